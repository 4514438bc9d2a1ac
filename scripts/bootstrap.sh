#!/usr/bin/env bash
# Install what pdb-sync needs on a fresh Debian/Ubuntu machine: rsync, and for the tests
# slurm-wlm and munge, and chromium with chromium-driver for the HTML report's browser
# tests and scripts/screenshot.py (apt-get; PDB_SYNC_BROWSER=0 leaves the browser out, as
# scripts/demo.sh does); the package itself with its test extras (pip, editable).
# Safe to run again: what is installed already is not looked up again.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
# A real single-node Slurm for tests/test_slurm.py (started by the tests, not here).
command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
[ -x /usr/sbin/munged ] || missing+=(munge)
# Debian's browser and its WebDriver (tests/test_report_html.py, scripts/screenshot.py).
if [ "${PDB_SYNC_BROWSER:-1}" = 1 ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
fi
if [ "${PDB_SYNC_BENCH:-0}" = 1 ]; then
  command -v parallel >/dev/null 2>&1 || missing+=(parallel)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
