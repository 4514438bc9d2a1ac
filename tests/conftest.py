"""Shared fixtures: a generated mini-PDB tree served by a real rsync daemon on loopback."""

from __future__ import annotations

import io
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from pdbsync import contracts
from pdbsync.cli import main
from pdbsync.context import Environment

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

from local_mirror import LocalMirror  # noqa: E402
from mini_pdb import generate  # noqa: E402

#: Seconds each transfer from the "slow" module waits before it starts (pre-xfer exec).
SLOW_DELAY = 0.6


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated wwPDB-style tree (the mirror's content)."""
    root = tmp_path_factory.mktemp("archive")
    generate(root, entries=40)
    return root


@pytest.fixture(scope="session")
def mirror(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalMirror:
    """A real rsync daemon on 127.0.0.1 serving ``archive`` as ftp_data, and as slow."""
    if shutil.which("rsync") is None:
        pytest.fail("rsync is not installed; run scripts/bootstrap.sh (apt-get install rsync)")
    local = LocalMirror(archive, tmp_path_factory.mktemp("mirror"))
    local.add_module("slow", archive, delay=SLOW_DELAY)
    local.start()
    yield local
    local.stop()


#: KiB/s the "throttled" daemon serves at: mmCIF (~37 kB) takes about two seconds.
THROTTLE_KIB = 24


@pytest.fixture(scope="session")
def throttled_mirror(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalMirror:
    """A second daemon serving ``archive`` with ``--bwlimit``: transfers long enough for
    rsync to redraw its progress many times (a slow mirror, as seen from the client)."""
    local = LocalMirror(
        archive, tmp_path_factory.mktemp("throttled"), daemon_args=(f"--bwlimit={THROTTLE_KIB}",)
    )
    local.start()
    yield local
    local.stop()


@dataclass
class CliResult:
    code: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode()

    @property
    def events(self) -> list[dict]:
        return [orjson.loads(line) for line in self.stdout.splitlines()]


def run_cli(*args: str, environ: dict | None = None) -> CliResult:
    """Run ``pdb-sync ARGS`` in-process, capturing stdout, stderr and the exit status."""
    out, err = io.BytesIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, stdout_isatty=False, environ=environ or {})
    code = main(list(args), env)
    return CliResult(int(code), out.getvalue(), err.getvalue())


def write_config(path: Path, pdb_dir: Path, targets: dict[str, dict], extra: str = "") -> Path:
    """A config file with ``[paths] pdb_dir`` and one ``[sync.custom.NAME]`` per target."""
    lines = ["[paths]", f'pdb_dir = "{pdb_dir}"', ""]
    for name, fields in targets.items():
        lines.append(f'[sync.custom."{name}"]')
        lines += [f"{key} = {orjson.dumps(value).decode()}" for key, value in fields.items()]
        lines.append("")
    path.write_text("\n".join(lines) + extra)
    return path


def assert_valid_events(events: list[dict]) -> None:
    for event in events:
        found = contracts.problems(event, "event")
        assert not found, (event, found)


@pytest.fixture
def four_targets(mirror: LocalMirror, tmp_path: Path) -> Path:
    """A config with four fast targets from the local mirror, mirror root under tmp_path."""
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "mmcif": {
                "url": mirror.url("ftp_data", "structures/divided/mmCIF/"),
                "dest": "structures/divided/mmCIF",
                "description": "mmCIF entries",
            },
            "pdb": {
                "url": mirror.url("ftp_data", "structures/divided/pdb/"),
                "dest": "structures/divided/pdb",
            },
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"},
            "emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"},
        },
    )
