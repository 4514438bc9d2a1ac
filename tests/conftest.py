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
from pdbsync.cli.context import Environment
from pdbsync.cli.main import main

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

from local_mirror import LocalMirror  # noqa: E402
from mini_pdb import generate  # noqa: E402

#: Seconds each transfer from the "slow" module waits before it starts (pre-xfer exec).
SLOW_DELAY = 0.6
#: Seconds each transfer from the "stall" module waits: longer than any test runs for,
#: so a target from it is reliably still running when a test interrupts it.
STALL_DELAY = 60


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Every test records its runs in a state dir of its own (pdbsync.store.history), never in
    the real ~/.local/state, and no test appends to a CI job's step summary."""
    directory = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("PDB_SYNC_STATE_DIR", str(directory))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return directory


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated wwPDB-style tree (the mirror's content)."""
    root = tmp_path_factory.mktemp("archive")
    generate(root, entries=40)
    return root


@pytest.fixture(scope="session")
def mirror(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalMirror:
    """A real rsync daemon on 127.0.0.1 serving ``archive`` as ftp_data, slow and stall."""
    if shutil.which("rsync") is None:
        pytest.fail("rsync is not installed; run scripts/bootstrap.sh (apt-get install rsync)")
    local = LocalMirror(archive, tmp_path_factory.mktemp("mirror"))
    local.add_module("slow", archive, delay=SLOW_DELAY)
    local.add_module("stall", archive, delay=STALL_DELAY)
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


# -- running the real command as a subprocess ---------------------------------------


def pdb_sync_command(*args: str) -> list[str]:
    """``python -m pdbsync ARGS`` with this interpreter (the installed package)."""
    return [sys.executable, "-m", "pdbsync", *args]


class LiveRun:
    """A ``pdb-sync ... --format json`` subprocess whose events are read as they come."""

    def __init__(self, *args: str, env: dict | None = None, new_session: bool = False) -> None:
        """``new_session``: pdb-sync leads a process group of its own, so a test can signal
        the whole group at once as Slurm, ``timeout`` or a closing terminal do."""
        import os
        import subprocess

        self.proc = subprocess.Popen(
            pdb_sync_command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            bufsize=0,  # unbuffered: select() must see every line readline() has not taken
            start_new_session=new_session,
        )
        self.events: list[dict] = []

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        """Read events until one satisfies ``predicate``; fail after ``timeout`` seconds."""
        import select
        import time

        deadline = time.monotonic() + timeout
        for event in self.events:
            if predicate(event):
                return event
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if not ready:
                continue
            line = self.proc.stdout.readline()
            if not line:
                break
            event = orjson.loads(line)
            self.events.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"event not seen within {timeout}s; got {self.events[-3:]}")

    def finish(self, timeout: float = 30.0) -> tuple[int, list[dict], str]:
        out, err = self.proc.communicate(timeout=timeout)
        self.events += [orjson.loads(line) for line in out.splitlines()]
        return self.proc.returncode, self.events, err.decode()


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from /proc (workers, forkserver, rsync)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids in ``pids`` that still exist and are not zombies."""
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def wait_until_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """Poll until none of ``pids`` is alive; return the ones still alive at the deadline."""
    import time

    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(pids)


def processes_mentioning(marker: str) -> dict[int, str]:
    """Every live (non-zombie) process in the whole process table whose command line
    contains ``marker`` (a test's tmp_path: in pdb-sync's config path, in each worker,
    which is a fork of it, and in every rsync's destination), pid -> command line.

    Not only the run's descendants: a process whose parent died is re-parented and
    would escape a walk down from the main process.
    """
    found = {}
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and alive({int(entry.name)}):
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def wait_until_none_mention(marker: str, timeout: float = 10.0) -> dict[int, str]:
    """Poll the process table until no process mentions ``marker``; return the survivors."""
    import time

    deadline = time.monotonic() + timeout
    while (found := processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.fixture
def old_rsync(tmp_path: Path, monkeypatch) -> Path:
    """rsync 3.2.7 first on PATH: a wrapper that answers ``--version`` as a vulnerable
    rsync (CVE-2024-12084..12088) and execs the real rsync for everything else."""
    real = shutil.which("rsync")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "rsync"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then\n'
        "  echo 'rsync  version 3.2.7  protocol version 31'; exit 0\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(real).parent}")
    return script
