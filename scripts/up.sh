#!/usr/bin/env bash
# The main job: installs what is missing, then runs the local stack until Ctrl-C. Options go to `smartfarm up`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/smartfarm up "$@"
