#!/usr/bin/env bash
# The test suite: installs what is missing, then lint, type check and every test against the real services.
#   bash scripts/test.sh              everything (what CI runs), on SMARTFARM_TEST_WORKERS workers (default 4)
#   bash scripts/test.sh --unit       the fast lane: lint, types and tests/unit only (no services), on every core
#   bash scripts/test.sh ARGS...      lint, types and pytest with ARGS, on one worker (e.g. tests/integration/edge -x)
# Everything runs in one pytest on several workers. Each starts its own Mosquitto, Kafka and InfluxDB
# the first time one of its tests asks (free loopback ports), and every test keeps to topics and databases of its
# own, so tests do not share state; the long ones start first (tests/conftest.py). Most of an integration test's time is spent waiting on services, so four
# workers on two cores finish sooner than two.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The Go load generator's own tests (its MQTT packets, stamps and payloads), with the flags its build uses
# (benchmarks/generators.py), so this warms the build cache the benchmark tests then build from.
go=$(command -v go || echo /usr/local/go/bin/go)
(cd benchmarks/loadgen && CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOSUMDB=off "$go" vet . && \
    CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOSUMDB=off "$go" test -trimpath -count=1 .)
if [ "${1:-}" = "--unit" ]; then
    shift
    .venv/bin/mypy
    exec .venv/bin/pytest -n auto tests/unit "$@"
fi
if [ $# -gt 0 ]; then
    .venv/bin/mypy
    exec .venv/bin/pytest "$@"
fi
# The whole suite: the type check runs beside the tests (most of their time is spent waiting on services) and
# fails the run all the same.
types=$(mktemp)
.venv/bin/mypy >"$types" 2>&1 &
mypy_pid=$!
status=0
.venv/bin/pytest -n "${SMARTFARM_TEST_WORKERS:-4}" --dist worksteal --durations=15 || status=$?
if ! wait "$mypy_pid"; then
    cat "$types"
    status=1
fi
rm -f "$types"
exit "$status"
