#!/usr/bin/env bash
# The test suite: installs what is missing, then lint, type check and every test against the real services.
#   bash scripts/test.sh              everything (what CI runs)
#   bash scripts/test.sh --unit       the fast lane: lint, types and tests/unit only (no services), on every core
#   bash scripts/test.sh ARGS...      everything, with ARGS for pytest (e.g. tests/integration/edge -x)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
if [ "${1:-}" = "--unit" ]; then
    shift
    exec .venv/bin/pytest -n auto tests/unit "$@"
fi
exec .venv/bin/pytest "$@"
