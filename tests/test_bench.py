"""scripts/bench.py --baseline, against the real daemon: two checkouts' rows side by side
(issue 22's before/after), each run from its own tree."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import SCRIPTS

pytestmark = pytest.mark.timeout(120)

ROOT = SCRIPTS.parent


def load_bench(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # bench imports local_mirror and mini_pdb
    spec = importlib.util.spec_from_file_location("bench", SCRIPTS / "bench.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_baseline_of_the_flat_layout_runs_its_own_entry_point(tmp_path, monkeypatch):
    """Before issue 22 the console script's entry was ``pdbsync.cli:entry`` (a module),
    now ``pdbsync.cli.main:entry``: each side must run its own tree's code."""
    old = tmp_path / "old"
    (old / "pdbsync").mkdir(parents=True)
    (old / "pdbsync" / "__init__.py").write_text("")
    (old / "pdbsync" / "cli.py").write_text(
        "import sys\n"
        "def entry():\n"
        "    sys.stderr.write('old tree ' + ' '.join(sys.argv[1:]))\n"
        "    return 0\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    bench = load_bench(monkeypatch)
    assert bench.checkout_runner(old, work, "before")(["--version"]) == b"old tree --version"
    new = bench.checkout_runner(ROOT, work, "after")
    imported = new(["--version"], python_flags=("-X", "importtime")).decode()
    assert "pdbsync.cli.main" in imported
    seconds, modules = bench.own_import_time(new, ["--version"])
    assert seconds > 0 and modules >= 3  # pdbsync, pdbsync.cli, pdbsync.cli.main at least


def test_baseline_rows_compare_two_checkouts(tmp_path):
    """The whole --baseline run on a tiny archive, this checkout on both sides: every row
    is printed for both, with as many interleaved runs as asked."""
    done = subprocess.run(
        [
            sys.executable, str(SCRIPTS / "bench.py"), "--baseline", str(ROOT),
            "--pdb-entries", "0", "--repeat", "2", "--startup-entries", "3",
            "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
        ],
        capture_output=True, text=True, timeout=110, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for title in ("pdb-sync --version", "Re-sync of 4 targets up to date", "-X importtime"):
        assert title in out
    assert out.count("  before ") == 3 and out.count("  after ") == 3
    assert "10 interleaved runs each" in out  # --version: five times --repeat
    assert "2 interleaved runs each" in out
    assert "load average at end" in out
    assert not (tmp_path / "out" / "baseline-small").exists()  # the copy is cleaned up
