"""``pdb-sync completion SHELL``: the scripts, and real completions through bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def command_dir(tmp_path) -> Path:
    """A ``pdb-sync`` on PATH that runs this checkout (what the scripts call back)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "pdb-sync"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m pdbsync "$@"\n')
    wrapper.chmod(0o755)
    return bin_dir


def _complete(line: str, command_dir: Path, config: Path | None = None) -> list[str]:
    """What bash offers for ``line`` (the cursor at its end), via the generated script."""
    words = line.split(" ")
    script = (
        "source <(pdb-sync completion bash)\n"
        f"COMP_LINE={_quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
        f"COMP_WORDS=({' '.join(_quote(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        "_python_argcomplete pdb-sync\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {
        **os.environ,
        "PATH": f"{command_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }
    if config is not None:
        env["PDB_SYNC_CONFIG"] = str(config)
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return [word.strip() for word in out.stdout.splitlines() if word.strip()]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture
def config(mirror, tmp_path) -> Path:
    return write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "mmcif": {"url": mirror.url("ftp_data", "structures/divided/mmCIF/"), "dest": "m"},
            "mmjson": {"url": mirror.url("ftp_data", "sifts/"), "dest": "j"},
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "s"},
        },
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_subcommands_options_and_target_names(command_dir, config):
    assert _complete("pdb-sync sta", command_dir) == ["status"]
    assert _complete("pdb-sync sync --ju", command_dir) == ["--junit"]
    assert sorted(_complete("pdb-sync sync mm", command_dir, config)) == ["mmcif", "mmjson"]
    # --config on the command line wins, as it does for the command itself
    assert _complete(f"pdb-sync --config {config} status s", command_dir) == ["sifts"]
    assert _complete("pdb-sync history mmc", command_dir, config) == ["mmcif"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_mirror_ids_complete_when_the_registry_exists(command_dir, config):
    mirrors = pytest.importorskip("pdbsync.mirrors.registry")
    offered = _complete("pdb-sync sync --mirror ", command_dir, config)
    assert set(mirrors.registry(None)) <= set(offered)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_a_broken_config_completes_nothing_and_prints_nothing(command_dir, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[[[ not toml")
    assert _complete("pdb-sync sync m", command_dir, broken) == []


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nospace"), ("zsh", "#compdef pdb-sync"), ("fish", "complete --command")],
)
def test_each_shell_gets_its_script(shell, marker):
    result = run_cli("completion", shell)
    assert result.code == 0 and marker in result.text and "pdb-sync" in result.text


def test_an_unknown_shell_is_a_usage_error():
    result = run_cli("completion", "tcsh")
    assert result.code == 2
    (line,) = result.stderr.splitlines()
    assert "invalid choice: 'tcsh'" in line


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_script_is_valid_bash():
    script = run_cli("completion", "bash").text
    subprocess.run(["bash", "-n"], input=script, text=True, check=True, timeout=30)
