"""pdbsync.cli.context: the streams a command runs with, including closed ones.

``pdb-sync sync ... 2>&-`` (cron lines, supervisors and CI runners that close a
stream) must still sync, write its summary and exit with its real code. These start
``python -m pdbsync`` from a shell that closes the stream, as such a caller would.
"""

from __future__ import annotations

import subprocess

import orjson
import pytest
from conftest import pdb_sync_command, write_config

from pdbsync.store import history as state

#: How the shell leaves a stream, and which one: closed, or open only for reading.
BROKEN = {
    "stderr closed": "2>&-",
    "stdout closed": ">&-",
    "stderr read-only": "2</dev/null",
}


@pytest.fixture
def sifts(mirror, tmp_path):
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {"sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"}},
    )


@pytest.mark.parametrize("output_format", ["text", "json"])
@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_run_with_a_closed_stream_syncs_and_exits_with_its_code(
    sifts, tmp_path, old_rsync, broken, output_format
):
    """``old_rsync`` makes the run warn on stderr before it starts: a write to the
    broken stream is certain."""
    summary = tmp_path / "summary.json"
    command = pdb_sync_command(
        "--config", str(sifts), "sync", "sifts", "--format", output_format,
        "--summary", str(summary),
    )  # fmt: skip
    done = subprocess.run(
        ["bash", "-c", f'"$@" {BROKEN[broken]}', "bash", *command],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stdout + done.stderr
    assert any((tmp_path / "pdb" / "sifts").iterdir())
    data = orjson.loads(summary.read_bytes())
    assert data["exit_code"] == 0 and data["results"][0]["status"] == "success"
    assert state.last_runs()[0]["started_at"] == data["started_at"]  # recorded
    if broken.startswith("stderr"):  # what is left open still carries its part
        finished = b'"run_finished"' if output_format == "json" else b"=== Sync Summary ==="
        assert finished in done.stdout
    else:
        assert done.stderr.decode().startswith("pdb-sync: warning: ")
