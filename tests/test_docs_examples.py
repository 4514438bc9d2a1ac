"""Docs that cannot drift: every ```` ```bash runnable ```` block in README.md and docs/
runs against the built-in local mirror and must exit 0 (docs/status.md explains the tag).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_config

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE = re.compile(r"^```bash runnable\n(.*?)^```", re.M | re.S)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: The target names the docs use, each served by the local mirror.
TARGETS = {
    "mmcif": "structures/divided/mmCIF/",
    "pdb": "structures/divided/pdb/",
    "assemblies": "assemblies/mmCIF/divided/",
    "sifts": "sifts/",
    "pdbj-pdb": "structures/divided/pdb/",
    "emdb": "emdb/",
}


def _blocks(path: Path) -> list[str]:
    return RUNNABLE.findall(path.read_text())


def test_the_docs_have_runnable_examples():
    assert _blocks(ROOT / "README.md"), "README.md has no ```bash runnable block"
    assert sum(len(_blocks(path)) for path in DOCS) >= 6


@pytest.mark.skipif(shutil.which("jq") is None, reason="the examples pipe into jq")
@pytest.mark.parametrize("doc", [p for p in DOCS if _blocks(p)], ids=lambda p: p.name)
def test_runnable_examples_run(doc, mirror, tmp_path):
    config = write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            name: {"url": mirror.url("ftp_data", source), "dest": name.replace("-", "/")}
            for name, source in TARGETS.items()
        },
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "pdb-sync"  # this checkout's pdb-sync, whatever is installed
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m pdbsync "$@"\n')
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "PDB_SYNC_CONFIG": str(config),
    }
    for number, block in enumerate(_blocks(doc), 1):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (
            f"{doc.name}, runnable block {number} exited {result.returncode}:\n{block}\n"
            f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}"
        )
