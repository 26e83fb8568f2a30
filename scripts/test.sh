#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up first (idempotent), then pytest on both cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
exec python -m pytest -n 2 -q "$@"
