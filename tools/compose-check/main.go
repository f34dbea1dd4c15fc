// compose-check loads a compose file with the compose specification's own loader (compose-go v2), interpolating
// it with the variables of an env file only (never the caller's environment), and prints the normalised project
// as JSON; on a loader error (a missing ${VAR:?...}, an unknown key, a bad depends_on) it prints the error and
// exits 1.
//
//	compose-check -env .env.example docker-compose.yml
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	envFile := flag.String("env", "", "env file the compose file is interpolated with")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env FILE] COMPOSE_FILE")
		os.Exit(2)
	}
	composeFile, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithName("smartfarm"),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithInterpolation(true),
	}
	if *envFile != "" {
		// Only the env file's variables: the test decides what is set, not the shell that runs it.
		opts = append(opts, cli.WithEnvFiles(*envFile), cli.WithDotEnv)
	}
	options, err := cli.NewProjectOptions([]string{composeFile}, opts...)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}
