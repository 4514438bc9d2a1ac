#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install, lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m pytest "$@"
