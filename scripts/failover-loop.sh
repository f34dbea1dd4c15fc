#!/usr/bin/env bash
# Runs the failover test (tests/integration/stream/test_failover.py) N times in a row and prints a tally: each run's
# result, duration and summary line (takeover time, readings, irrigations), then passed/failed. Not CI: each run
# starts its own Mosquitto, Kafka and InfluxDB and takes about a minute. Each run's output and its workers' logs
# are kept in the log folder, and a failed run's services' data and logs too.
#   usage: scripts/failover-loop.sh [N=20] [LOG_DIR=.smartfarm/failover-loop]
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-20}
logs=${2:-.smartfarm/failover-loop}
mkdir -p "$logs"
passed=0
failed=0
for ((i = 1; i <= runs; i++)); do
    began=$(date +%s)
    out="$logs/run-$i.log"
    .venv/bin/pytest tests/integration/stream/test_failover.py -x -s -p no:cacheprovider \
        --basetemp="$logs/tmp-$i" >"$out" 2>&1
    status=$?
    took=$(($(date +%s) - began))
    summary=$(grep -m1 '^SIGKILL with' "$out" || grep -m1 -E '^E +(AssertionError|assert|Failed)' "$out" || tail -1 "$out")
    if ((status == 0)); then
        passed=$((passed + 1))
        verdict=passed
        for log in "$logs/tmp-$i"/test_*0/w*.log; do cp "$log" "$logs/run-$i-$(basename "$log")"; done
        rm -rf "$logs/tmp-$i"  # the services' data (Kafka's log alone is large); a failed run's is kept
    else
        failed=$((failed + 1))
        verdict="FAILED (exit $status)"
    fi
    printf '%s run %d/%d %s in %d s: %s\n' "$(date -u +%H:%M:%S)" "$i" "$runs" "$verdict" "$took" "$summary"
done
printf 'tally: %d of %d passed, %d failed (logs in %s)\n' "$passed" "$runs" "$failed" "$logs"
((failed == 0))
