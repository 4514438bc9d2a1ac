"""Unattended runs: retry, fail-fast, cancellation by signal, crashes, hostile output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    LiveRun,
    alive,
    assert_valid_events,
    descendants,
    pdb_sync_command,
    run_cli,
    wait_until_gone,
    write_config,
)
from local_mirror import LocalMirror

from pdbsync import contracts


@pytest.fixture
def flaky_mirror(archive, tmp_path):
    """A fresh daemon whose ``flaky`` module refuses its first two transfers."""
    local = LocalMirror(archive, tmp_path / "flaky-mirror")
    local.add_module("flaky", archive, fail_first=2)
    local.start()
    yield local
    local.stop()


def _flaky_config(flaky_mirror, tmp_path):
    return write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"sifts": {"url": flaky_mirror.url("flaky", "sifts/"), "dest": "sifts"}},
    )


def test_flaky_target_recovers_with_retry(flaky_mirror, tmp_path):
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config",
        str(_flaky_config(flaky_mirror, tmp_path)),
        "sync",
        "sifts",
        "--retry",
        "3",
        "--retry-delay",
        "0",
        "--format",
        "json",
        "--summary",
        str(summary),
    )
    assert result.code == 0, result.stderr
    assert_valid_events(result.events)
    retries = [e for e in result.events if e["type"] == "retry"]
    assert [e["attempt"] for e in retries] == [2, 3]
    assert all(e["exit_code"] == 10 for e in retries)
    entry = json.loads(summary.read_text())["results"][0]
    assert entry["status"] == "success" and entry["attempts"] == 3
    assert flaky_mirror.connections("flaky") == 3
    assert any((tmp_path / "pdb/sifts").rglob("*.xml.gz"))


def test_retry_line_in_text_mode(flaky_mirror, tmp_path):
    result = run_cli(
        "--config",
        str(_flaky_config(flaky_mirror, tmp_path)),
        "sync",
        "sifts",
        "--retry",
        "2",
        "--retry-delay",
        "0",
    )
    assert result.code == 0, result.stderr
    assert "[sifts] Retry 1/2 after 0s (exit 10: error in socket I/O)" in result.text
    assert "[sifts] Retry 2/2 after 0s (exit 10: error in socket I/O)" in result.text


def test_without_retry_a_flaky_target_fails_once(flaky_mirror, tmp_path):
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config",
        str(_flaky_config(flaky_mirror, tmp_path)),
        "sync",
        "sifts",
        "--summary",
        str(summary),
    )
    assert result.code == 1
    entry = json.loads(summary.read_text())["results"][0]
    assert entry["attempts"] == 1 and entry["exit_code"] == 10
    assert flaky_mirror.connections("flaky") == 1


def test_permanent_failure_is_not_retried(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"typo": {"url": mirror.url("no_such_module", "x/"), "dest": "x"}},
    )
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config",
        str(config),
        "sync",
        "typo",
        "--retry",
        "3",
        "--retry-delay",
        "0",
        "--summary",
        str(summary),
    )
    assert result.code == 1
    entry = json.loads(summary.read_text())["results"][0]
    assert entry["attempts"] == 1 and entry["exit_code"] == 5
    assert "Retry" not in result.text


def test_fail_fast_skips_unstarted_targets(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "broken": {"url": mirror.url("no_such_module", "x/"), "dest": "broken"},
            "later1": {"url": mirror.url("ftp_data", "sifts/"), "dest": "later1"},
            "later2": {"url": mirror.url("ftp_data", "emdb/"), "dest": "later2"},
        },
    )
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config", str(config), "sync", "--all", "--fail-fast", "--summary", str(summary)
    )
    assert result.code == 1
    statuses = {r["name"]: r["status"] for r in json.loads(summary.read_text())["results"]}
    assert statuses == {"broken": "failed", "later1": "skipped", "later2": "skipped"}
    assert not (tmp_path / "pdb/later1").exists()
    assert "Skipped: 2" in result.text


def test_fail_fast_kill_stops_running_targets(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "stalled": {"url": mirror.url("stall", "sifts/"), "dest": "stalled"},
            "broken": {"url": mirror.url("no_such_module", "x/"), "dest": "broken"},
        },
    )
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config",
        str(config),
        "sync",
        "--all",
        "--parallel",
        "2",
        "--fail-fast=kill",
        "--summary",
        str(summary),
    )
    assert result.code == 1
    statuses = {r["name"]: r["status"] for r in json.loads(summary.read_text())["results"]}
    assert statuses == {"stalled": "cancelled", "broken": "failed"}


def _live_json_run(config: Path, parallel: int, summary: Path | None = None) -> LiveRun:
    """``pdb-sync sync --all --parallel N --format json [--summary PATH]``, running."""
    extra = ["--summary", str(summary)] if summary else []
    return LiveRun(
        "--config",
        str(config),
        "sync",
        "--all",
        "--parallel",
        str(parallel),
        "--format",
        "json",
        *extra,
    )


def _stalled_config(mirror, tmp_path, count=3):
    targets = {
        f"s{i}": {"url": mirror.url("stall", "sifts/"), "dest": f"s{i}"} for i in range(count)
    }
    targets["last"] = {"url": mirror.url("ftp_data", "emdb/"), "dest": "last"}
    return write_config(tmp_path / "c.toml", tmp_path / "pdb", targets)


@pytest.mark.parametrize(
    ("signum", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]
)
def test_signal_cancels_run_and_leaves_no_process(mirror, tmp_path, signum, code, name):
    summary = tmp_path / "s.json"
    run = _live_json_run(_stalled_config(mirror, tmp_path), 3, summary)
    started = set()
    run.wait_for(
        lambda e: e["type"] == "sync_started" and not started.add(e["name"]) and len(started) == 3
    )
    deadline = time.monotonic() + 10
    while len(family := descendants(run.proc.pid)) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)  # sync_started comes just before each worker starts its rsync
    assert len(family) >= 6, family  # 3 workers, 3 rsyncs
    run.proc.send_signal(signum)
    exit_code, events, stderr = run.finish(timeout=15)
    assert exit_code == code, stderr
    assert "Traceback" not in stderr
    assert not wait_until_gone(family), "processes of the run outlived it"
    assert_valid_events(events)
    data = json.loads(summary.read_text())
    assert not contracts.problems(data, "summary")
    assert data["interrupted"] == name and data["exit_code"] == code
    statuses = {r["name"]: r["status"] for r in data["results"]}
    assert statuses == {
        "s0": "cancelled",
        "s1": "cancelled",
        "s2": "cancelled",
        "last": "cancelled",
    }
    assert events[-1]["type"] == "run_finished"


def test_second_ctrl_c_exits_at_once(mirror, tmp_path):
    run = _live_json_run(_stalled_config(mirror, tmp_path, count=2), 2)
    started = set()
    run.wait_for(
        lambda e: e["type"] == "sync_started" and not started.add(e["name"]) and len(started) == 2
    )
    family = descendants(run.proc.pid)
    run.proc.send_signal(signal.SIGINT)
    run.proc.send_signal(signal.SIGINT)
    exit_code, _events, stderr = run.finish(timeout=15)
    assert exit_code == 130, stderr
    assert not wait_until_gone(family)


def _wait_for_children(pid: int, timeout: float = 10.0) -> set[int]:
    """The children of ``pid`` once it has some (its rsync has started)."""
    deadline = time.monotonic() + timeout
    while not (found := descendants(pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert found, f"process {pid} started no child within {timeout}s"
    return found


def test_killed_worker_fails_its_target_and_run_finishes(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "victim": {"url": mirror.url("stall", "sifts/"), "dest": "victim"},
            "fine": {"url": mirror.url("slow", "emdb/"), "dest": "fine"},
        },
    )
    summary = tmp_path / "s.json"
    run = _live_json_run(config, 2, summary)
    victim = run.wait_for(lambda e: e["type"] == "sync_started" and e["name"] == "victim")
    rsyncs = _wait_for_children(victim["pid"])
    os.kill(victim["pid"], signal.SIGKILL)
    exit_code, events, stderr = run.finish(timeout=30)
    assert exit_code == 1, stderr
    results = {r["name"]: r for r in json.loads(summary.read_text())["results"]}
    assert results["fine"]["status"] == "success"
    assert results["victim"]["status"] == "failed"
    assert "died unexpectedly" in results["victim"]["error"]
    assert not wait_until_gone(rsyncs), "rsync outlived its killed worker"
    assert events[-1]["type"] == "run_finished"


def test_rsync_missing_from_path_is_one_line_exit_2(four_targets, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run(
        pdb_sync_command("--config", str(four_targets), "sync", "--all"),
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(empty)},
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pdb-sync: error: rsync not found on PATH (looked for 'rsync'); install it, e.g. "
        "'apt-get install rsync'"
    ]


def test_too_old_rsync_is_one_line_exit_2(four_targets, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old = bin_dir / "rsync"
    old.write_text("#!/bin/sh\necho 'rsync  version 3.0.9  protocol version 30'\n")
    old.chmod(0o755)
    result = subprocess.run(
        pdb_sync_command("--config", str(four_targets), "sync", "--all"),
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "rsync 3.0.9 is too old" in lines[0]


def test_stdout_closed_early_does_not_stop_the_run(four_targets, tmp_path, archive):
    summary = tmp_path / "s.json"
    command = " ".join(
        pdb_sync_command("--config", str(four_targets), "sync", "--all", "--summary", str(summary))
    )
    result = subprocess.run(
        f"set -o pipefail; {command} | head -3",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(result.stdout.splitlines()) == 3
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 0
    data = json.loads(summary.read_text())
    assert data["totals"]["succeeded"] == 4
    assert len(list((tmp_path / "pdb/sifts").rglob("*.gz"))) == len(
        list((archive / "sifts").rglob("*.gz"))
    )


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs (root) mounted at tmp_path/tiny; skipped where mounting is not allowed."""
    target = tmp_path / "tiny"
    target.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def test_full_disk_fails_only_its_own_target(mirror, tmp_path, tiny_fs):
    # dest must be relative to pdb_dir: make pdb_dir the parent of the tiny mount.
    config = write_config(
        tmp_path / "c.toml",
        tmp_path,
        {
            "full": {"url": mirror.url("ftp_data", "structures/"), "dest": "tiny/structures"},
            "fine": {"url": mirror.url("ftp_data", "emdb/"), "dest": "fine"},
        },
    )
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config",
        str(config),
        "sync",
        "--all",
        "--parallel",
        "2",
        "--retry",
        "2",
        "--retry-delay",
        "0",
        "--summary",
        str(summary),
    )
    assert result.code == 1
    results = {r["name"]: r for r in json.loads(summary.read_text())["results"]}
    assert results["fine"]["status"] == "success"
    full = results["full"]
    assert full["status"] == "failed" and full["exit_code"] in (11, 12, 23)
    assert "No space left on device" in full["error"]
    assert full["attempts"] == 1, "a full disk is not worth retrying"


def test_read_only_destination_fails_only_its_own_target(mirror, tmp_path, tiny_fs):
    (tiny_fs / "ro").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    config = write_config(
        tmp_path / "c.toml",
        tmp_path,
        {
            "readonly": {"url": mirror.url("ftp_data", "emdb/"), "dest": "tiny/ro"},
            "fine": {"url": mirror.url("ftp_data", "emdb/"), "dest": "fine"},
        },
    )
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config", str(config), "sync", "--all", "--parallel", "2", "--summary", str(summary)
    )
    assert result.code == 1
    results = {r["name"]: r for r in json.loads(summary.read_text())["results"]}
    assert results["fine"]["status"] == "success"
    assert results["readonly"]["status"] == "failed"
    assert "Read-only file system" in results["readonly"]["error"]


def test_invalid_utf8_file_names_keep_json_valid(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "ok.cif").write_bytes(b"data\n")
    os.close(os.open(os.fsencode(source) + b"/bad-\xff\xfe.cif", os.O_CREAT | os.O_WRONLY))
    with LocalMirror(source, tmp_path / "m") as local:
        config = write_config(
            tmp_path / "c.toml",
            tmp_path / "pdb",
            {"odd": {"url": local.url("ftp_data", ""), "dest": "odd"}},
        )
        stderr_garbage = subprocess.run(  # rsync itself is fine with such names
            ["rsync", "-a", local.url("ftp_data", ""), str(tmp_path / "raw")], check=True
        )
        assert stderr_garbage.returncode == 0
        result = run_cli("--config", str(config), "sync", "odd", "--format", "json")
    assert result.code == 0, result.stderr
    assert_valid_events(result.events)
    assert (tmp_path / "pdb/odd").joinpath(os.fsdecode(b"bad-\xff\xfe.cif")).exists()


def test_worker_decodes_invalid_utf8_lines_with_replacement():
    from pdbsync.rsync.argv import RsyncArgv
    from pdbsync.run.jobs import Job
    from pdbsync.run.worker import _Attempt

    sent = []
    command = RsyncArgv("rsync", "h::m/", "/tmp/x")
    attempt = _Attempt(Job("t", "h::m/", Path("/tmp/x"), command), sent.append)
    attempt.handle_lines("stdout", [b"caf\xe9 \xff"])
    attempt.flush()
    ((batch,),) = [(message.expanded(),) for message in sent]
    assert batch[0]["line"] == "caf\ufffd \ufffd"


def test_rsync_runs_with_a_partial_dir_only_when_partial_is_on(four_targets):
    for flags, expected in (([], False), (["--partial"], True)):
        result = run_cli("--config", str(four_targets), "sync", "emdb", *flags, "--format", "json")
        started = next(e for e in result.events if e["type"] == "sync_started")
        assert ("--partial-dir=.rsync-partial" in started["argv"]) is expected


def test_python_dash_m_entry_point_reports_version():
    result = subprocess.run(
        [sys.executable, "-m", "pdbsync", "--version"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and result.stdout.startswith("pdb-sync ")
    assert alive(set()) == set()


def test_lock_left_held_by_a_dead_worker_is_released_after_a_grace_period():
    import multiprocessing

    from pdbsync.run.supervisor import STUCK_LOCK_SECONDS, StuckLockWatch

    lock = multiprocessing.get_context("fork").Lock()
    watch = StuckLockWatch()
    lock.acquire()  # as a worker killed in the middle of a put leaves the queue's lock
    watch.look(lock, last_message_at=0.0, now=100.0)
    assert not lock.acquire(False), "released too early"
    watch.look(lock, last_message_at=0.0, now=100.0 + STUCK_LOCK_SECONDS)
    assert lock.acquire(False), "a lock held by a dead worker was never released"
    watch.look(lock, last_message_at=0.0, now=150.0)  # held (by us now): a new first look
    watch.look(lock, last_message_at=151.0, now=151.0 + STUCK_LOCK_SECONDS)
    assert not lock.acquire(False), "released while messages were still arriving"
    lock.release()
    watch.look(lock, last_message_at=0.0, now=200.0)  # a free lock is left free
    assert lock.acquire(False)


def _stop_self() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)


def test_shutting_down_a_pool_with_a_half_read_task_ends_quietly(capfd):
    """A worker killed while it read its next task leaves the rest of the message in the
    task pipe (SIGTERM to the whole process group can do it); Pool.terminate then reads
    from the middle of that message and fails. The CI run that found this printed a
    thread's traceback; the shutdown must stay silent and leave no process behind."""
    import multiprocessing
    import struct
    import threading

    from pdbsync.run import supervisor

    failures = []
    previous_hook = threading.excepthook
    threading.excepthook = failures.append
    try:
        pool = multiprocessing.get_context("fork").Pool(1, initializer=_stop_self)
        workers = [process.pid for process in pool._pool]
        # The pool's task thread still busy when terminate comes (here: on a task list
        # that waits), so terminate drains the task pipe.
        gate = threading.Event()
        pool.imap_unordered(abs, (gate.wait() and n for n in [1]))
        # What is left of a message whose first bytes a dead worker read: here, a length
        # header of 0, which unpickles as "Ran out of input" (the error CI saw).
        os.write(pool._inqueue._writer.fileno(), struct.pack("!i", 0))
        supervisor.shut_down(pool)
    finally:
        gate.set()
        threading.excepthook = previous_hook
    assert failures == []
    assert "Traceback" not in capfd.readouterr().err
    assert alive(set(workers)) == set()
    for thread in (pool._worker_handler, pool._task_handler, pool._result_handler):
        thread.join(timeout=10)
        assert not thread.is_alive(), f"the pool's {thread.name} thread still waits"


def test_fail_fast_before_a_target_name_keeps_the_name(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"}},
    )
    result = run_cli("--config", str(config), "sync", "--fail-fast", "emdb")
    assert result.code == 0, result.stderr
    assert (tmp_path / "pdb/emdb").is_dir()


def test_sigterm_after_an_idle_worker_was_killed_still_exits(mirror, tmp_path):
    """An idle worker holds the pool's task lock while it waits; killed, it never lets go.

    Pool.terminate() would then wait forever; pdb-sync must still write its summary and
    exit (this is what a job-wide SIGTERM from Slurm or a stray kill -9 can do).
    """
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "long": {"url": mirror.url("stall", "sifts/"), "dest": "long"},
            "short": {"url": mirror.url("ftp_data", "emdb/"), "dest": "short"},
        },
    )
    summary = tmp_path / "s.json"
    run = _live_json_run(config, 2, summary)
    short = run.wait_for(lambda e: e["type"] == "sync_started" and e["name"] == "short")
    run.wait_for(lambda e: e["type"] == "sync_finished" and e["name"] == "short")
    family = descendants(run.proc.pid)
    os.kill(short["pid"], signal.SIGKILL)  # now idle: it finished its only job
    run.proc.send_signal(signal.SIGTERM)
    exit_code, _events, stderr = run.finish(timeout=30)
    assert exit_code == 143, stderr
    statuses = {r["name"]: r["status"] for r in json.loads(summary.read_text())["results"]}
    assert statuses == {"long": "cancelled", "short": "success"}
    assert not wait_until_gone(family)


def test_quiet_hides_rsync_chatter_but_keeps_the_numbers(mirror, tmp_path, archive):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts", "preset": "fast"}},
    )
    summary = tmp_path / "s.json"
    result = run_cli("--config", str(config), "sync", "sifts", "--summary", str(summary))
    assert result.code == 0, result.stderr
    assert "Number of files" not in result.text
    entry = json.loads(summary.read_text())["results"][0]
    assert entry["files_transferred"] == len(list((archive / "sifts").rglob("*.gz")))
    (tmp_path / "pdb/sifts/stale.txt").write_text("old")
    plan = run_cli("--config", str(config), "sync", "sifts", "--plan", "--format", "json")
    assert plan.code == 0, plan.stderr
    planned = next(e for e in plan.events if e["type"] == "plan")
    assert planned["delete_enabled"] and planned["to_delete"] == 1


def test_an_rsync_child_whose_worker_died_before_it_was_tied_to_it_exits(monkeypatch):
    """A worker SIGKILLed between the fork of its rsync and the child's PR_SET_PDEATHSIG
    sends the child no signal, and the parent never learns that rsync's pid: the child must
    notice it has another parent already and exit before exec (CI saw an rsync outlive its
    killed worker in test_killed_worker_fails_its_target_and_run_finishes)."""
    import ctypes
    from functools import partial

    from pdbsync.run import worker

    monkeypatch.setattr(worker, "_prctl", ctypes.CDLL(None, use_errno=True).prctl)
    not_my_parent = os.getppid()  # as seen from the child: a pid that is not its parent now
    orphan = subprocess.run(
        ["sh", "-c", "echo ran"],
        preexec_fn=partial(worker._die_with_parent, not_my_parent),
        capture_output=True,
        timeout=30,
    )
    assert orphan.returncode == 128 + signal.SIGTERM and orphan.stdout == b""
    tied = subprocess.run(
        ["sh", "-c", "echo ran"],
        preexec_fn=partial(worker._die_with_parent, os.getpid()),
        capture_output=True,
        timeout=30,
    )
    assert tied.returncode == 0 and tied.stdout == b"ran\n"
