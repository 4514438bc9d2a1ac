"""scripts/pool_floor.py, the benchmark's floor row, against the real daemon: it must do
the same transfers as the rows beside it, or its time says nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SCRIPTS

pytestmark = pytest.mark.timeout(60)

FLAGS = ["-a", "--partial-dir=.rsync-partial", "--info=progress2", "--stats"]


def floor(jobs: int, lines: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "pool_floor.py"), *options, str(jobs), *FLAGS],
        input="".join(f"{line}\n" for line in lines),
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
    loaded = floor(1, [line], "--preload", "pdbsync.api,pdbsync.runner")
    assert loaded.returncode == 0, loaded.stderr
    assert files_under(tmp_path / "sifts") == files_under(archive / "sifts")
