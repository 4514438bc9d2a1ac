"""How runs end: every stop signal, delivered as schedulers and terminals really deliver
it, and the main process killed outright. Each case runs in a loop (the races these
guard against showed about one time in five) and looks for survivors in the whole
process table, not only below the main process.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import (
    LiveRun,
    assert_valid_events,
    processes_mentioning,
    wait_until_none_mention,
    write_config,
)

from pdbsync import contracts

#: How many times each case runs.
ROUNDS = 4


def _semaphores() -> set[str]:
    """multiprocessing's named semaphores (glibc's own short-lived ``sem.XXXXXX`` temp
    files, which any process making a semaphore shows for a moment, are not ours)."""
    return {name for name in os.listdir("/dev/shm") if name.startswith("sem.mp-")}


def _busy_config(mirror, throttled_mirror, tmp_path: Path) -> Path:
    """Three targets running at once (one stalled before its transfer, two transferring
    slowly, so rsync's receiver process exists) and one still queued."""
    return write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "stalled": {"url": mirror.url("stall", "sifts/"), "dest": "stalled"},
            "mmcif": {
                "url": throttled_mirror.url("ftp_data", "structures/divided/mmCIF/"),
                "dest": "mmcif",
            },
            "pdb": {
                "url": throttled_mirror.url("ftp_data", "structures/divided/pdb/"),
                "dest": "pdb",
            },
            "queued": {"url": mirror.url("ftp_data", "emdb/"), "dest": "queued"},
        },
    )


def _start_busy_run(config: Path, summary: Path) -> LiveRun:
    run = LiveRun(
        "--config",
        str(config),
        "sync",
        "--all",
        "--parallel",
        "3",
        "--format",
        "json",
        "--summary",
        str(summary),
        new_session=True,
    )
    started: set[str] = set()
    run.wait_for(
        lambda e: e["type"] == "sync_started" and not started.add(e["name"]) and len(started) == 3
    )
    run.wait_for(lambda e: e["type"] == "progress" and e["name"] in ("mmcif", "pdb"))
    return run


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("signum", "whole_group"),
    [
        (signal.SIGTERM, True),  # Slurm (scancel, time limit), `timeout`
        (signal.SIGTERM, False),  # kill PID
        (signal.SIGHUP, True),  # the terminal or ssh session closed
        (signal.SIGINT, True),  # Ctrl-C: the whole foreground group
        (signal.SIGUSR1, False),  # a scheduler's early warning
    ],
    ids=["TERM-group", "TERM-main", "HUP-group", "INT-group", "USR1-main"],
)
def test_a_stop_signal_cancels_cleanly_and_leaves_nothing(
    mirror, throttled_mirror, tmp_path, signum, whole_group
):
    name = signal.Signals(signum).name
    expected_exit = 128 + signum
    for round_number in range(ROUNDS):
        work = tmp_path / f"round{round_number}"
        work.mkdir()
        summary = work / "s.json"
        semaphores = _semaphores()
        run = _start_busy_run(_busy_config(mirror, throttled_mirror, work), summary)
        assert len(processes_mentioning(str(work))) >= 6  # main, 3 workers, 3 rsyncs
        if whole_group:
            os.killpg(run.proc.pid, signum)
        else:
            run.proc.send_signal(signum)
        # The stalled target would run 60 s: its ``cancelled`` (below) shows the signal
        # ended the run. How soon (Slurm's KillWait can be 5 s) is a row of
        # scripts/bench.py, not a bound here.
        exit_code, events, stderr = run.finish(timeout=30)
        assert exit_code == expected_exit, stderr
        assert "Traceback" not in stderr and "did not stop" not in stderr, stderr
        survivors = wait_until_none_mention(str(work))
        assert not survivors, f"round {round_number}: outlived the run: {survivors}"
        assert _semaphores() <= semaphores, "semaphores left in /dev/shm"
        assert_valid_events(events)
        assert events[-1]["type"] == "run_finished"
        assert events[-1]["summary"]["exit_code"] == exit_code
        data = json.loads(summary.read_text())
        assert not contracts.problems(data, "summary")
        assert data["interrupted"] == name and data["exit_code"] == expected_exit
        results = {r["name"]: r for r in data["results"]}
        assert results["stalled"]["status"] == "cancelled"
        assert results["queued"]["status"] == "cancelled"
        for result in results.values():
            if result["status"] != "success":
                assert result["status"] == "cancelled", result
                assert name in result["error"], result
                assert "died unexpectedly" not in result["error"], result


@pytest.mark.timeout(240)
@pytest.mark.parametrize("whole_group", [False, True], ids=["main-only", "whole-group"])
def test_sigkill_leaves_no_process_and_nothing_in_dev_shm(
    mirror, throttled_mirror, tmp_path, whole_group
):
    """``kill -9`` of pdb-sync (the OOM killer) or of every process at once (Slurm after
    KillWait, a cgroup OOM kill): no worker, no rsync and no semaphore may stay behind."""
    for round_number in range(ROUNDS):
        work = tmp_path / f"round{round_number}"
        work.mkdir()
        semaphores = _semaphores()
        run = _start_busy_run(_busy_config(mirror, throttled_mirror, work), work / "s.json")
        if whole_group:
            os.killpg(run.proc.pid, signal.SIGKILL)
        else:
            run.proc.kill()
        run.proc.wait(timeout=10)
        survivors = wait_until_none_mention(str(work))
        assert not survivors, f"round {round_number}: outlived pdb-sync: {survivors}"
        assert _semaphores() <= semaphores, "semaphores left in /dev/shm"
        assert not (work / "s.json").exists()


@pytest.mark.timeout(120)
def test_sighup_to_the_main_process_still_writes_the_summary(mirror, throttled_mirror, tmp_path):
    summary = tmp_path / "s.json"
    run = _start_busy_run(_busy_config(mirror, throttled_mirror, tmp_path), summary)
    run.proc.send_signal(signal.SIGHUP)
    exit_code, _events, stderr = run.finish(timeout=30)
    assert exit_code == 129, stderr
    assert "BrokenPipe" not in stderr and "Traceback" not in stderr
    assert json.loads(summary.read_text())["interrupted"] == "SIGHUP"
    assert not wait_until_none_mention(str(tmp_path))
