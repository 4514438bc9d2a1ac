"""scripts/demo.py as a user runs it: it works in a new, empty or earlier demo directory
and removes nothing it did not make."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pdbsync import contracts

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"
MARKER = ".pdb-sync-demo"


def _demo(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), "--workdir", str(workdir), "--entries", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_demo_ran(workdir: Path, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((workdir / "summary.json").read_text())
    assert not contracts.problems(summary, "summary")
    assert summary["totals"]["succeeded"] == summary["totals"]["total"] == 4
    archive = {p.name for p in (workdir / "archive/sifts").rglob("*.gz")}
    assert archive and archive == {p.name for p in (workdir / "pdb/sifts").rglob("*.gz")}


def test_a_missing_workdir_is_created_marked_and_used(tmp_path):
    workdir = tmp_path / "new" / "demo-run"
    result = _demo(workdir)
    _assert_demo_ran(workdir, result)
    assert (workdir / MARKER).is_file()


def test_an_empty_workdir_is_used(tmp_path):
    result = _demo(tmp_path)
    _assert_demo_ran(tmp_path, result)


def test_twice_in_a_row_renews_the_demos_entries_and_keeps_the_rest(tmp_path):
    workdir = tmp_path / "demo-run"
    _assert_demo_ran(workdir, _demo(workdir))
    (workdir / "thesis.txt").write_text("four years of work")
    (workdir / "notes").mkdir()
    (workdir / "notes/n.txt").write_text("keep me")
    stale = workdir / "pdb/sifts/stale-from-last-run.gz"
    stale.write_text("old")
    _assert_demo_ran(workdir, _demo(workdir))
    assert (workdir / "thesis.txt").read_text() == "four years of work"
    assert (workdir / "notes/n.txt").read_text() == "keep me"
    assert not stale.exists(), "the demo's own pdb tree was not renewed"


def test_a_non_empty_directory_it_did_not_make_is_refused_untouched(tmp_path):
    (tmp_path / "thesis.txt").write_text("four years of work")
    (tmp_path / "pdb").mkdir()
    (tmp_path / "pdb/mine.cif").write_text("my own structure")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = _demo(tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert f"--workdir {tmp_path}" in line and MARKER in line and "Traceback" not in line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "thesis.txt").read_text() == "four years of work"
    assert (tmp_path / "pdb/mine.cif").read_text() == "my own structure"


def test_a_file_as_workdir_is_refused(tmp_path):
    path = tmp_path / "thesis.txt"
    path.write_text("four years of work")
    result = _demo(path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert f"--workdir {path}: not a directory" in line
    assert path.read_text() == "four years of work"


def test_a_symlink_among_the_demos_entries_goes_but_not_its_target(tmp_path):
    workdir = tmp_path / "demo-run"
    _assert_demo_ran(workdir, _demo(workdir))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep")
    (workdir / "summary.json").unlink()
    (workdir / "summary.json").symlink_to(precious / "data.txt")
    _assert_demo_ran(workdir, _demo(workdir))
    assert (precious / "data.txt").read_text() == "keep"


def test_the_demo_shows_a_weekly_update(tmp_path):
    """After its four targets, the demo runs a weekly target twice: a full sync (no
    earlier one), then one weekly release applied by itself."""
    workdir = tmp_path / "demo-run"
    result = _demo(workdir)
    _assert_demo_ran(workdir, result)
    assert "Starting full sync (no previous full sync" in result.stdout
    assert (
        "Starting weekly update: week 20261111 (added 4, modified 3, obsolete 2)" in result.stdout
    )
    weekly = json.loads((workdir / "weekly-summary.json").read_text())
    assert not contracts.problems(weekly, "summary")
    (entry,) = weekly["results"]
    assert (entry["mode"], entry["weeks"], entry["added"]) == ("weekly", ["20261111"], 4)
    archive = workdir / "weekly-archive/structures/divided/mmCIF"
    mirrored = workdir / "pdb/weekly/mmCIF"
    assert sorted(p.relative_to(archive) for p in archive.rglob("*.gz")) == sorted(
        p.relative_to(mirrored) for p in mirrored.rglob("*.gz")
    )
