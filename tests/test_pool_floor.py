"""scripts/pool_floor.py, the benchmark's floor row, against the real daemon: it must do
the same transfers as the rows beside it, or its time says nothing."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SCRIPTS, processes_mentioning

pytestmark = pytest.mark.timeout(60)

FLAGS = ["-a", "--partial-dir=.rsync-partial", "--info=progress2", "--stats"]


def load_floor():
    spec = importlib.util.spec_from_file_location("pool_floor", SCRIPTS / "pool_floor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def floor_command(jobs: int, *options: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / "pool_floor.py"), *options, str(jobs), *FLAGS]


def as_input(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def floor(jobs: int, lines: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        floor_command(jobs, *options),
        input=as_input(lines),
        capture_output=True,
        text=True,
        timeout=50,
    )


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_copies_every_target_and_tags_each_line(mirror, archive: Path, tmp_path: Path) -> None:
    sources = {"mmcif": "structures/divided/mmCIF/", "sifts": "sifts/", "emdb": "emdb/"}
    result = floor(2, [f"{mirror.url('ftp_data', p)} {tmp_path / n}/" for n, p in sources.items()])
    assert result.returncode == 0, result.stderr
    for name, path in sources.items():
        assert files_under(tmp_path / name) == files_under(archive / path)
        assert f"[{name}] Number of files:" in result.stdout
    untagged = [line for line in result.stdout.splitlines() if not line.startswith("[")]
    assert untagged == []


def test_a_failed_transfer_is_its_exit_code(mirror, tmp_path: Path) -> None:
    result = floor(1, [f"{mirror.url('no_such_module', '')} {tmp_path / 'x'}/"])
    assert result.returncode == 5  # rsync: error starting client-server protocol
    assert "[x] @ERROR: Unknown module" in result.stdout


def test_preload_imports_the_modules_before_the_transfers(mirror, archive: Path, tmp_path) -> None:
    line = f"{mirror.url('ftp_data', 'sifts/')} {tmp_path / 'sifts'}/"
    missing = floor(1, [line], "--preload", "pdbsync.api,no_such_module_here")
    assert missing.returncode == 1
    assert "No module named 'no_such_module_here'" in missing.stderr
    assert not (tmp_path / "sifts").exists()  # nothing ran before the imports
    loaded = floor(1, [line], "--preload", "pdbsync.api,pdbsync.run.collector")
    assert loaded.returncode == 0, loaded.stderr
    assert files_under(tmp_path / "sifts") == files_under(archive / "sifts")


def test_a_line_keeps_what_a_terminal_shows_of_it() -> None:
    last_redraw = load_floor().last_redraw
    cases = [b"", b"plain", b"a\rb", b"  1%\r  2%\r 100%", b"a\r", b"\r", b"\r\rz"]
    for line in cases:
        assert last_redraw(line) == line.rsplit(b"\r", 1)[-1]


def test_an_input_line_without_a_destination_is_refused_before_any_transfer(mirror) -> None:
    result = floor(1, [mirror.url("ftp_data", "sifts/")])
    assert result.returncode == 1
    assert "expected 'URL DEST'" in result.stderr


def test_an_rsync_killed_by_a_signal_fails_the_run(mirror, tmp_path: Path) -> None:
    stalled = tmp_path / "stalled"
    lines = [
        f"{mirror.url('ftp_data', 'sifts/')} {tmp_path / 'done'}/",
        f"{mirror.url('stall', 'sifts/')} {stalled}/",
    ]
    with subprocess.Popen(
        floor_command(2),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        proc.stdin.write(as_input(lines))
        proc.stdin.close()
        deadline = time.monotonic() + 20
        rsyncs: list[int] = []
        while not rsyncs and time.monotonic() < deadline:
            rsyncs = [
                pid
                for pid, cmd in processes_mentioning(str(stalled)).items()
                if cmd.startswith("rsync ")
            ]
            time.sleep(0.02)
        assert rsyncs, "the stalled rsync never started"
        for pid in rsyncs:
            os.kill(pid, signal.SIGKILL)
        out, err = proc.stdout.read(), proc.stderr.read()  # both small: no deadlock
        proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGKILL, err
    assert "[done] Number of files:" in out
