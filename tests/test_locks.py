"""The dest lock: two real runs into one pdb_dir never run rsync into the same dest."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from conftest import (
    LiveRun,
    assert_valid_events,
    pdb_sync_command,
    processes_mentioning,
    run_cli,
    write_config,
)

import pdbsync
from pdbsync import contracts
from pdbsync.api import prepare
from pdbsync.errors import ExitCode, UsageError
from pdbsync.paths import LOCK_SUFFIX, lock_path
from pdbsync.run import locks
from pdbsync.run.driver import RunSettings, run_sync
from pdbsync.run.locks import DestLock, LockRefused

pytestmark = pytest.mark.timeout(120)


def _config(throttled_mirror, tmp_path, name="c.toml"):
    return write_config(
        tmp_path / name,
        tmp_path / "pdb",
        {
            "mmcif": {
                "url": throttled_mirror.url("ftp_data", "structures/divided/mmCIF/"),
                "dest": "m",
            }
        },
    )


def _run(config, *extra):
    return LiveRun("--config", str(config), "sync", "mmcif", "--format", "json", *extra)


def _rsync_groups_into(dest) -> set[int]:
    """The process groups of the rsyncs writing under ``dest`` (rsync leads its own
    group; the receiver it forks is in it): one group per rsync run."""
    groups = set()
    for pid, line in processes_mentioning(str(dest)).items():
        if "rsync" in line.split()[0]:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            groups.add(int(stat.rsplit(")", 1)[1].split()[2]))
    return groups


def test_the_lock_file_sits_beside_the_dest_and_names_its_holder(tmp_path):
    dest = tmp_path / "pdb" / "structures" / "mmCIF"
    path = lock_path(dest)
    assert path == tmp_path / "pdb" / "structures" / f"mmCIF{LOCK_SUFFIX}"
    path.parent.mkdir(parents=True)
    first, second = DestLock.open(path), DestLock.open(path)
    assert first.try_take()
    first.write_holder({"SLURM_JOB_ID": "77"})
    assert not second.try_take()
    assert second.holder().startswith(f"pid {os.getpid()} on {socket.gethostname()} (Slurm job 77)")
    first.release()
    assert second.try_take()
    second.release()


def test_a_symlink_in_place_of_the_lock_file_is_refused(tmp_path):
    (tmp_path / "elsewhere").write_text("x")
    (tmp_path / f"d{LOCK_SUFFIX}").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LockRefused, match="is a symlink"):
        DestLock.open(lock_path(tmp_path / "d"))


def test_a_second_run_gives_up_on_a_locked_target_after_lock_timeout(throttled_mirror, tmp_path):
    config = _config(throttled_mirror, tmp_path)
    first = _run(config)
    holder = first.wait_for(lambda e: e["type"] == "progress")["name"]
    assert holder == "mmcif"
    worker_pid = next(e["pid"] for e in first.events if e["type"] == "sync_started")
    second = _run(config, "--lock-timeout", "0.5")
    code, events, stderr = second.finish(timeout=30)
    assert code == 1, stderr
    assert_valid_events(events)
    [waited] = [e for e in events if e["type"] == "lock_wait"]
    assert waited["holder"].startswith(f"pid {worker_pid} on ")
    result = events[-1]["summary"]["results"][0]
    assert result["status"] == "skipped"
    assert f"locked by pid {worker_pid} on" in result["error"]
    assert "--lock-timeout" in result["error"]
    assert not any(e["type"] == "output" for e in events)  # its rsync never started
    code, events, stderr = first.finish(timeout=30)
    assert code == 0, stderr


def test_a_second_run_waits_for_the_lock_and_never_runs_rsync_beside_the_first(
    throttled_mirror, tmp_path
):
    for round_number in range(2):
        work = tmp_path / f"round{round_number}"
        work.mkdir()
        config = _config(throttled_mirror, work)
        first = _run(config)
        first.wait_for(lambda e: e["type"] == "progress")
        second = _run(config)
        second.wait_for(lambda e: e["type"] == "lock_wait")
        most = 0
        while first.proc.poll() is None:  # while the first runs, one rsync tree at most
            most = max(most, len(_rsync_groups_into(work / "pdb")))
            time.sleep(0.02)
        code, _, stderr = first.finish(timeout=30)
        assert code == 0, stderr
        assert most == 1
        code, events, stderr = second.finish(timeout=30)
        assert code == 0, stderr
        result = events[-1]["summary"]["results"][0]
        assert result["status"] == "success"


def test_a_run_killed_outright_frees_its_lock(throttled_mirror, tmp_path):
    config = _config(throttled_mirror, tmp_path)
    first = LiveRun("--config", str(config), "sync", "mmcif", "--format", "json", new_session=True)
    first.wait_for(lambda e: e["type"] == "progress")
    os.killpg(first.proc.pid, signal.SIGKILL)  # the OOM killer, Slurm after KillWait
    first.proc.wait(timeout=10)
    second = _run(config, "--lock-timeout", "10")
    code, events, stderr = second.finish(timeout=60)
    assert code == 0, stderr
    assert events[-1]["summary"]["results"][0]["status"] == "success"
    holder = json.loads(lock_path(tmp_path / "pdb" / "m").read_text())
    assert holder["pid"] != first.proc.pid and orjson.dumps(holder)


# -- failing closed: a lock path that is not a regular file --------------------------------

#: What can sit where a lock file goes, and the words the refusal uses for it.
NOT_A_FILE = {
    "directory": "is a directory",
    "fifo": "is a FIFO",
    "socket": "is a socket",
    "dangling symlink": "is a symlink (to ",
    "symlink to a file": "is a symlink (to ",
}


def _put_in_the_way(kind: str, path: Path) -> None:
    """Something that is not a regular file at lock path ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "directory":
        path.mkdir()
        (path / "keep").write_text("someone's file\n")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()  # the socket file stays
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "nowhere")
    else:
        (path.parent / "a-file").write_text("x")
        path.symlink_to(path.parent / "a-file")


def _three_targets(mirror, tmp_path: Path, split: int | None = None) -> Path:
    mmcif = {"url": mirror.url("ftp_data", "structures/divided/mmCIF/"), "dest": "m"}
    if split is not None:
        mmcif["split"] = split
    return write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "mmcif": mmcif,
            "pdb": {"url": mirror.url("ftp_data", "structures/divided/pdb/"), "dest": "p"},
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "s"},
        },
    )


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` and what it is (contents of files), to compare before/after."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path)] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[str(path)] = path.read_text()
        else:
            found[str(path)] = "dir" if path.is_dir() else "other"
    return found


@pytest.mark.parametrize("split", [None, 2], ids=["whole", "split"])
@pytest.mark.parametrize("kind", list(NOT_A_FILE))
def test_a_lock_path_that_is_not_a_file_refuses_the_sync_before_anything_is_written(
    mirror, tmp_path, kind, split
):
    """The lock path of the second target is in the way: the whole run is refused, exit
    2, one line naming the target, the lock path and what is there; no dest is written,
    no summary either. A split target (its parts share the target's lock) likewise."""
    config = _three_targets(mirror, tmp_path, split)
    blocked = lock_path(tmp_path / "pdb" / "m")
    _put_in_the_way(kind, blocked)
    before = _tree(tmp_path / "pdb")
    summary = tmp_path / "summary.json"
    result = run_cli(
        "--config", str(config), "sync", "sifts", "mmcif", "pdb",
        "--parallel", "2", "--summary", str(summary), "--format", "json",
    )  # fmt: skip
    assert result.code == ExitCode.USAGE, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"pdb-sync: error: target 'mmcif': its lock file {blocked} ")
    assert NOT_A_FILE[kind] in line and "not a regular file" in line
    assert "Traceback" not in result.stderr
    assert result.stdout == b""  # no run_started: nothing ran
    assert _tree(tmp_path / "pdb") == before
    assert not summary.exists()


@pytest.mark.parametrize("kind", list(NOT_A_FILE))
def test_the_library_refuses_a_lock_path_that_is_not_a_file(mirror, tmp_path, kind):
    config = _three_targets(mirror, tmp_path, split=2)
    blocked = lock_path(tmp_path / "pdb" / "m")
    _put_in_the_way(kind, blocked)
    before = _tree(tmp_path / "pdb")
    events = []
    with pytest.raises(LockRefused) as refused:
        pdbsync.sync(config, parallel=2, on_event=events.append)
    assert refused.value.exit_code == ExitCode.USAGE
    assert refused.value.message.startswith(f"target 'mmcif': its lock file {blocked} ")
    assert NOT_A_FILE[kind] in refused.value.message
    assert events == []
    assert _tree(tmp_path / "pdb") == before


def test_a_shard_checks_the_locks_of_its_own_jobs(mirror, tmp_path):
    """A shard runs the same preflight over its share: the share with the blocked
    target is refused, the other runs."""
    config = _three_targets(mirror, tmp_path)
    _put_in_the_way("directory", lock_path(tmp_path / "pdb" / "m"))
    outcomes = {}
    for index in (1, 2, 3):
        result = run_cli(
            "--config", str(config), "sync", "--all", "--shard", f"{index}/3", "--format", "json"
        )  # fmt: skip
        outcomes[index] = result
    refused = [r for r in outcomes.values() if r.code == ExitCode.USAGE]
    assert len(refused) == 1 and "target 'mmcif'" in refused[0].stderr
    assert all(r.code == 0 for r in outcomes.values() if r not in refused)
    assert not (tmp_path / "pdb" / "m").exists()
    assert any((tmp_path / "pdb" / "s").iterdir()) and any((tmp_path / "pdb" / "p").iterdir())


def test_a_worker_fails_its_target_rather_than_run_unlocked(mirror, tmp_path):
    """The preflight is the only place that decides to run unlocked: a worker that finds
    a symlink at the lock path (swapped in after the check; here the run skips the
    check) fails the target, and its rsync never starts."""
    config = _three_targets(mirror, tmp_path)
    jobs = prepare(config, ["mmcif", "sifts"])
    _put_in_the_way("symlink to a file", lock_path(tmp_path / "pdb" / "m"))
    events = []
    summary = run_sync(jobs, RunSettings(parallel=2), events.append)
    results = {r.name: r for r in summary.results}
    assert results["mmcif"].status == "failed"
    assert results["mmcif"].error.startswith("not started: target 'mmcif': its lock file ")
    assert "is a symlink" in results["mmcif"].error
    assert results["sifts"].status == "success"
    assert not (tmp_path / "pdb" / "m").exists()
    assert not any(e["type"] == "output" and e["name"] == "mmcif" for e in events)


def test_two_runs_on_a_symlinked_lock_path_never_write_the_dest_at_once(throttled_mirror, tmp_path):
    """The bug of issue 20: with a symlink at the lock path both runs went unlocked and
    ran rsync into one dest together. Now, round after round, neither writes."""
    for round_number in range(3):
        work = tmp_path / f"round{round_number}"
        work.mkdir()
        config = _config(throttled_mirror, work)
        (work / "pdb").mkdir()
        _put_in_the_way("symlink to a file", lock_path(work / "pdb" / "m"))
        runs = [_run(config), _run(config)]
        most = 0
        while any(run.proc.poll() is None for run in runs):
            most = max(most, len(_rsync_groups_into(work / "pdb")))
            time.sleep(0.02)
        finished = [run.finish(timeout=30) for run in runs]
        assert most <= 1  # never two rsyncs into the dest at once
        for code, _events, stderr in finished:
            assert code == ExitCode.USAGE, stderr
            assert "is a symlink" in stderr
        assert most == 0
        assert not (work / "pdb" / "m").exists()


# -- a file system that cannot lock: run unlocked, warn once --------------------------------

#: An LD_PRELOAD library: flock() on any lock file of pdb-sync fails as on an NFS mount
#: without lockd; every other flock (the state dir's) works.
NO_LOCKS_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int flock(int fd, int operation) {
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    const char *suffix = ".pdb-sync.lock";
    size_t s = strlen(suffix);
    if (n >= (ssize_t)s) {
        target[n] = 0;
        if (strcmp(target + n - s, suffix) == 0) {
            errno = ERRNO;
            return -1;
        }
    }
    int (*real)(int, int) = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
    return real(fd, operation);
}
"""


@pytest.fixture(scope="module", params=["ENOLCK", "EOPNOTSUPP"])
def no_locks(request, tmp_path_factory) -> dict[str, str]:
    """The environment of a pdb-sync whose lock files cannot be locked (``errno``)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the LD_PRELOAD shim")
    work = tmp_path_factory.mktemp("shim")
    (work / "shim.c").write_text(NO_LOCKS_SHIM)
    library = work / "no_locks.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", f"-DERRNO={request.param}", "-o", str(library),
         str(work / "shim.c"), "-ldl"],
        check=True,
    )  # fmt: skip
    return {"LD_PRELOAD": str(library)}


def _sync_without_locks(env: dict[str, str], *args: str) -> tuple[int, list[dict], str]:
    done = subprocess.run(
        pdb_sync_command(*args, "--format", "json"),
        env={**os.environ, **env},
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=100,
    )
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, events, done.stderr.decode()


def _the_one_warning(events: list[dict], stderr: str) -> dict:
    lines = [line for line in stderr.splitlines() if line.startswith("pdb-sync: warning:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    warnings = [e for e in events if e["type"] == "warning"]
    assert len(warnings) == 1, warnings
    [warning] = warnings
    assert warning["code"] == "unlocked"
    assert lines[0] == f"pdb-sync: warning: {warning['message']}"
    kinds = [e["type"] for e in events]
    assert kinds.index("warning") < kinds.index("run_started")
    return warning


def test_where_flock_fails_every_target_runs_unlocked_and_the_run_warns_once(
    mirror, tmp_path, no_locks
):
    config = _three_targets(mirror, tmp_path)
    code, events, stderr = _sync_without_locks(
        no_locks, "--config", str(config), "sync", "--all", "--parallel", "2"
    )
    assert code == 0, stderr
    assert_valid_events(events)
    warning = _the_one_warning(events, stderr)
    assert sorted(warning["targets"]) == ["mmcif", "pdb", "sifts"]
    assert sorted(warning["locks"]) == sorted(
        str(lock_path(tmp_path / "pdb" / d)) for d in ("m", "p", "s")
    )
    assert f"in {tmp_path / 'pdb'} (flock: " in warning["message"]
    assert "unlocked" in warning["message"]
    results = events[-1]["summary"]["results"]
    assert [r["status"] for r in results] == ["success"] * 3
    assert all(r["unlocked"].startswith("flock: ") for r in results)  # and the summary says so
    for dest in ("m", "p", "s"):
        assert any(path.is_file() for path in (tmp_path / "pdb" / dest).rglob("*"))


def test_where_flock_fails_a_split_target_runs_unlocked_and_the_run_warns_once(
    mirror, tmp_path, no_locks
):
    config = _three_targets(mirror, tmp_path, split=2)
    code, events, stderr = _sync_without_locks(
        no_locks, "--config", str(config), "sync", "mmcif", "sifts", "--parallel", "2"
    )
    assert code == 0, stderr
    assert_valid_events(events)
    warning = _the_one_warning(events, stderr)
    assert sorted(warning["targets"]) == ["mmcif", "sifts"]
    parts = {e["part"] for e in events if e["type"] == "part_finished" and e["name"] == "mmcif"}
    assert parts == {1, 2}  # it was split, and both parts ran
    results = {r["name"]: r for r in events[-1]["summary"]["results"]}
    assert results["mmcif"]["status"] == results["sifts"]["status"] == "success"
    assert any(path.is_file() for path in (tmp_path / "pdb" / "m").rglob("*"))


def test_a_worker_that_cannot_lock_fails_its_target(tmp_path, no_locks):
    """Without the preflight's word that this file system cannot lock (it could when
    the run began), a worker does not go on unlocked: the target fails, not started."""
    probe = (
        "import sys; from pathlib import Path; from pdbsync.run import locks\n"
        "outcome = locks.take(Path(sys.argv[1]), 'mmcif', None, lambda: None,"
        " lambda s: None, print)\n"
        "print(outcome.lock, outcome.status, outcome.reason, sep='|')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "pdb" / "m")],
        env={**os.environ, **no_locks},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lock, status, reason = done.stdout.strip().split("|")
    assert (lock, status) == ("None", "failed")
    assert reason.startswith(f"not started: cannot lock {lock_path(tmp_path / 'pdb' / 'm')}: ")


def test_the_library_gets_the_one_warning_as_an_event(mirror, tmp_path, no_locks):
    """``pdbsync.sync`` in a process where flock fails: the run succeeds and its
    ``on_event`` gets the one warning, first."""
    config = _three_targets(mirror, tmp_path)
    script = (
        "import json, sys, pdbsync\n"
        "events = []\n"
        "summary = pdbsync.sync(sys.argv[1], parallel=2, on_event=events.append)\n"
        "print(json.dumps([summary.exit_code, [e['type'] for e in events],"
        " [e for e in events if e['type'] == 'warning']]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(config)],
        env={**os.environ, **no_locks},
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    code, kinds, warnings = json.loads(done.stdout)
    assert code == 0
    assert kinds[0] == "warning" and kinds.count("warning") == 1
    assert warnings[0]["code"] == "unlocked"
    assert sorted(warnings[0]["targets"]) == ["mmcif", "pdb", "sifts"]


def test_preflight_marks_only_the_jobs_it_cannot_lock(mirror, tmp_path):
    """Pure logic: a lockable dest gets no mark and no warning."""
    config = _three_targets(mirror, tmp_path)
    jobs, warnings = locks.preflight(prepare(config, ["mmcif", "sifts"]))
    assert warnings == []
    assert [job.unlocked for job in jobs] == [None, None]
    assert lock_path(tmp_path / "pdb" / "m").is_file()  # created, as the worker would


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_another_users_lock_file_still_locks(tmp_path):
    """Two users sharing one pdb_dir: the lock file the first created (0644) cannot be
    opened for writing by the second, whose run went on unlocked; it is opened
    read-only now, so the second run sees the lock held and waits (here: gives up)."""
    import tempfile

    shared = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp dirs are root's alone
    try:
        shared.chmod(0o755)
        dest = shared / "m"
        first = DestLock.open(lock_path(dest))
        assert first.try_take()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the other user
            try:
                os.setgid(65534)
                os.setuid(65534)
                outcome = locks.take(dest, "mmcif", 0.0, lambda: None, lambda s: None, print)
                answer = f"{outcome.lock is not None}|{outcome.status}|{outcome.reason}"
            except BaseException as exc:  # reported to the parent
                answer = f"error|{exc!r}|"
            os.write(write, answer.encode())
            os._exit(0)
        os.close(write)
        os.waitpid(child, 0)
        with os.fdopen(read) as pipe:
            held, status, reason = pipe.read().split("|", 2)
        first.release()
        assert (held, status) == ("False", "skipped"), reason
        assert "locked by" in reason
    finally:
        shutil.rmtree(shared)


# -- another user's lock file, the mode of a new one -----------------------------------------


def _as_another_user(work: Callable[[], str]) -> str:
    """``work()``'s answer, run in a forked child that dropped to uid/gid 65534 (nobody);
    an exception comes back as ``error|TYPE|message``. Only modules already imported can
    be used there: the interpreter's own files may be root's alone."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            answer = work()
        except BaseException as exc:  # reported to the parent
            answer = f"error|{type(exc).__name__}|{getattr(exc, 'message', exc)}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        return pipe.read()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that another user can reach (pytest's are root's alone)."""
    import tempfile

    shared = Path(tempfile.mkdtemp(dir="/tmp"))
    shared.chmod(0o755)
    try:
        yield shared
    finally:
        shutil.rmtree(shared)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_a_lock_file_another_user_cannot_open_refuses_the_sync(mirror, shared_dir):
    """A lock file made 0600 (a run under ``umask 077`` before the mode was set
    explicitly) cannot be opened by another user, whose run then went on unlocked (it
    was called "cannot create the lock file"): the owner's run may hold it. Now that is
    refused, exit 2, naming the target, the lock path and the error. Only where there
    is no lock file and none can be created does a run still go unlocked."""
    config = _three_targets(mirror, shared_dir)
    jobs = {job.name: job for job in prepare(config, ["mmcif", "sifts"])}
    private = lock_path(shared_dir / "pdb" / "m")
    private.parent.mkdir(mode=0o755)  # root's: nobody can create a file in it
    os.close(os.open(private, os.O_CREAT | os.O_WRONLY, 0o600))
    private.chmod(0o600)

    def check(names: list[str]) -> Callable[[], str]:
        def work() -> str:
            checked, warnings = locks.preflight([jobs[name] for name in names])
            return "|".join([*(str(job.unlocked) for job in checked), str(len(warnings))])

        return work

    kind, name, message = _as_another_user(check(["mmcif"])).split("|", 2)
    assert (kind, name) == ("error", "LockRefused"), message
    assert message.startswith(
        f"target 'mmcif': cannot open its lock file {private}: Permission denied; "
    )
    assert LockRefused(message).exit_code == ExitCode.USAGE
    assert "\n" not in message
    # sifts has no lock file, and nobody can make one in root's pdb dir: unlocked, warned
    reason, warnings = _as_another_user(check(["sifts"])).split("|")
    assert reason == "cannot create the lock file: Permission denied" and warnings == "1"
    assert not lock_path(shared_dir / "pdb" / "s").exists()


def test_a_new_lock_file_is_readable_by_all_whatever_the_umask(tmp_path):
    """Under ``umask 077`` a new lock file was 0600, so no other user's run could open
    it to lock it. Its mode is set explicitly now; an existing file's is left alone."""
    path = lock_path(tmp_path / "d")
    old = os.umask(0o077)
    try:
        DestLock.open(path).release()
        mine = lock_path(tmp_path / "e")
        os.close(os.open(mine, os.O_CREAT | os.O_WRONLY, 0o600))
        DestLock.open(mine).release()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == locks.LOCK_FILE_MODE == 0o644
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_a_lock_made_under_umask_077_still_keeps_another_users_run_out(shared_dir):
    dest = shared_dir / "m"
    old = os.umask(0o077)
    try:
        first = DestLock.open(lock_path(dest))
    finally:
        os.umask(old)
    assert first.try_take()

    def work() -> str:
        outcome = locks.take(dest, "mmcif", 0.0, lambda: None, time.sleep, print)
        return f"{outcome.lock is not None}|{outcome.status}|{outcome.reason}"

    held, status, reason = _as_another_user(work).split("|", 2)
    first.release()
    assert (held, status) == ("False", "skipped"), reason
    assert "locked by" in reason


# -- the library without on_event ------------------------------------------------------------


def test_the_library_without_on_event_logs_the_warning_and_each_result_says_unlocked(
    mirror, tmp_path, no_locks
):
    """``pdbsync.sync`` with no ``on_event`` ran unlocked without a word, and nothing
    in its summary said so: the warning now goes to the log (loguru's stderr handler in
    a plain Python process) and each unlocked target's result says why."""
    config = _three_targets(mirror, tmp_path)
    summary = tmp_path / "summary.json"
    script = (
        "import sys, pdbsync\n"
        "result = pdbsync.sync(sys.argv[1], ['mmcif', 'sifts'], summary=sys.argv[2])\n"
        "print(int(result.exit_code))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(config), str(summary)],
        env={**os.environ, **no_locks},
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "0\n"
    data = json.loads(summary.read_text())
    assert not contracts.problems(data, "summary")
    reasons = {r["name"]: r.get("unlocked") for r in data["results"]}
    assert reasons.keys() == {"mmcif", "sifts"}
    assert all(reason and reason.startswith("flock: ") for reason in reasons.values()), reasons
    lines = [line for line in done.stderr.splitlines() if "no dest lock for" in line]
    assert len(lines) == 1, done.stderr
    assert "WARNING" in lines[0] and "unlocked" in lines[0]


# -- another run's lock check never changes this run's outcome --------------------------------


def _probed(dest: Path) -> DestLock:
    """The lock of ``dest`` held shared, as another run's :func:`locks.preflight` holds
    it for an instant."""
    path = lock_path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = DestLock.open(path)
    assert probe.try_take(shared=True)
    return probe


def test_another_runs_lock_check_does_not_make_lock_timeout_0_skip_a_target(tmp_path):
    """``--lock-timeout 0`` met the instant of another run's preflight probe and skipped
    the target ("locked by" a holder long gone). It looks once more after one poll now:
    the probe ends during that wait (here: the wait ends it) and the target runs."""
    dest = tmp_path / "pdb" / "m"
    probe = _probed(dest)
    waits, events = [], []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        probe.release()  # the probe's instant is over

    outcome = locks.take(dest, "mmcif", 0.0, lambda: None, wait, events.append)
    assert (outcome.status, outcome.reason) == (None, None)
    assert outcome.lock is not None
    assert len(waits) == 1 and 0 < waits[0] <= locks.POLL_SECONDS
    assert [event["type"] for event in events] == ["lock_wait"]
    other = DestLock.open(lock_path(dest))
    assert not other.try_take()  # it is really held
    outcome.lock.release()
    other.release()


def test_lock_timeout_0_still_skips_a_target_another_run_holds(tmp_path):
    dest = tmp_path / "pdb" / "m"
    lock_path(dest).parent.mkdir(parents=True)
    holder = DestLock.open(lock_path(dest))
    assert holder.try_take()
    outcome = locks.take(dest, "mmcif", 0.0, lambda: None, time.sleep, lambda event: None)
    holder.release()
    assert outcome.lock is None and outcome.status == "skipped"
    assert "gave up after 0s (--lock-timeout)" in outcome.reason


def test_another_runs_lock_check_does_not_leave_a_split_target_unsplit(mirror, tmp_path):
    """A split target whose lock was probed that instant was quietly not split; its
    lock goes through :func:`locks.take` now, with the same one more look."""
    from pdbsync.split import parts as splitting

    config = _three_targets(mirror, tmp_path, split=2)
    [job] = prepare(config, ["mmcif"])
    probe = _probed(job.resolved_dest or job.dest)
    lock = splitting._take_lock(job, wait=lambda seconds: probe.release())
    assert lock is not None
    other = DestLock.open(lock_path(job.resolved_dest or job.dest))
    assert not other.try_take()
    lock.release()
    other.release()


# -- the library checks its arguments before it makes anything --------------------------------


@pytest.mark.parametrize("bad", [{"split": 0}, {"split": "two"}, {"max_per_host": 0}])
def test_a_bad_split_argument_is_refused_before_any_lock_file_is_made(mirror, tmp_path, bad):
    config = _three_targets(mirror, tmp_path)
    with pytest.raises(UsageError, match=next(iter(bad))):
        pdbsync.sync(config, ["mmcif", "sifts"], **bad)
    assert not (tmp_path / "pdb").exists()  # no lock file, no dest parent
