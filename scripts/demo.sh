#!/usr/bin/env bash
# Install pdb-sync, start the built-in local mirror (an rsync daemon on 127.0.0.1
# serving a generated mini-PDB archive) and sync four targets with --parallel 3;
# the run's HTML report lands in demo-run/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
PDB_SYNC_BROWSER=0 bash scripts/bootstrap.sh  # the demo writes its report; no browser needed
exec python3 scripts/demo.py "$@"
