#!/usr/bin/env bash
# Install what pdb-sync needs on a fresh Debian/Ubuntu machine: rsync (apt-get) and the
# package itself with its test extras (pip, editable). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
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
