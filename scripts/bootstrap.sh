#!/usr/bin/env bash
# Installs what SmartFarm needs on a fresh Debian or Ubuntu machine, skipping what is already there:
# Mosquitto, InfluxDB 1.x, Prometheus (with promtool), PostgreSQL, Chromium and its driver, Java, Maven and Go from the distribution, a virtualenv (.venv) with the project and its
# test extra (installed by uv), and the Kafka broker's jars (fetched by Maven into ~/.cache/smartfarm).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
{ command -v mosquitto || [ -x /usr/sbin/mosquitto ]; } >/dev/null || missing+=(mosquitto mosquitto-clients)
command -v influxd >/dev/null || missing+=(influxdb)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v promtool >/dev/null || missing+=(prometheus)  # Prometheus and promtool (alert rules are checked and tested)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)  # the farm registry's server database
{ command -v chromium && command -v chromedriver; } >/dev/null || missing+=(chromium chromium-driver)  # the web app's browser tests
{ command -v go || [ -x /usr/local/go/bin/go ]; } >/dev/null || missing+=(golang-go)  # the benchmark's load generator, Telegraf
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages start their own daemons on 1883, 8086 and 9090 where systemd runs; SmartFarm runs its own.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        for unit in mosquitto influxdb prometheus postgresql; do
            as_root systemctl disable --now "$unit" >/dev/null 2>&1 && echo "bootstrap: stopped the packaged $unit service" || true
        done
    fi
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "bootstrap: Python 3.11 or newer is needed" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.smartfarm-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: installing the project into .venv"
    # uv resolves the same requirements as pip and fetches and unpacks them in parallel: about 17 s on a fresh
    # machine where pip took 50 s (measured here). Bytecode is compiled at install, as pip does: otherwise every
    # process the tests start compiles the libraries it imports (the four test workers at once) the first time.
    .venv/bin/python -m pip install -q uv
    .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -e '.[test]'
    echo "$want" > "$stamp"
fi

.venv/bin/smartfarm services fetch-kafka
