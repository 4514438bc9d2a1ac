"""The scheduler decides order, fail-fast and cancellation without starting anything."""

from __future__ import annotations

from pathlib import Path

from pdbsync.rsync.argv import RsyncArgv
from pdbsync.run.jobs import Job
from pdbsync.run.scheduler import FAIL_FAST_KILL_CAUSE, FAIL_FAST_REASON, RunState, Scheduler


def _jobs(*names: str) -> list[Job]:
    return [
        Job(name, f"h::m/{name}/", Path(f"/d/{name}"), RsyncArgv("rsync", "", "")) for name in names
    ]


def _names(jobs: list[Job]) -> list[str]:
    return [job.name for job in jobs]


def test_jobs_start_in_order_and_never_more_than_the_slots():
    scheduler = Scheduler(_jobs("a", "b", "c", "d"), slots=2)
    assert _names(scheduler.to_start()) == ["a", "b"]
    assert scheduler.to_start() == []  # both slots busy
    assert not scheduler.finished("b", "success")
    assert _names(scheduler.to_start()) == ["c"]
    scheduler.finished("a", "failed")  # without fail-fast a failure changes nothing
    assert _names(scheduler.to_start()) == ["d"]
    scheduler.finished("c", "success")
    scheduler.finished("d", "success")
    assert scheduler.done and scheduler.state is RunState.RUNNING


def test_fail_fast_waits_for_running_jobs_and_skips_the_rest():
    scheduler = Scheduler(_jobs("a", "b", "c"), slots=2, fail_fast="wait")
    scheduler.to_start()
    assert scheduler.finished("a", "failed") is False  # nothing to stop: b may finish
    assert scheduler.state is RunState.DRAINING
    assert scheduler.to_start() == []
    gone = scheduler.not_started()
    assert [(g.job.name, g.status, g.reason) for g in gone] == [("c", "skipped", FAIL_FAST_REASON)]
    assert not scheduler.done  # b still runs
    scheduler.finished("b", "success")
    assert scheduler.done


def test_fail_fast_kill_stops_the_running_jobs():
    scheduler = Scheduler(_jobs("a", "b", "c"), slots=2, fail_fast="kill")
    scheduler.to_start()
    assert scheduler.finished("a", "failed") is True
    assert scheduler.state is RunState.STOPPING and scheduler.stop_cause == FAIL_FAST_KILL_CAUSE
    assert [g.status for g in scheduler.not_started()] == ["skipped"]
    assert scheduler.finished("b", "cancelled") is False  # a second failure stops nothing new


def test_a_cancel_stops_once_and_names_its_cause_for_waiting_jobs():
    scheduler = Scheduler(_jobs("a", "b", "c"), slots=1)
    scheduler.to_start()
    assert scheduler.cancel("cancelled by SIGTERM") is True
    assert scheduler.cancel("cancelled by SIGTERM") is False
    assert scheduler.to_start() == []
    gone = scheduler.not_started()
    assert [(g.job.name, g.status) for g in gone] == [("b", "cancelled"), ("c", "cancelled")]
    assert gone[0].reason == "cancelled by SIGTERM before it started"
    assert scheduler.not_started() == []  # each job is reported once
    scheduler.finished("a", "cancelled")
    assert scheduler.done


def test_a_cancel_outranks_an_earlier_fail_fast_stop():
    scheduler = Scheduler(_jobs("a", "b", "c"), slots=2, fail_fast="wait")
    scheduler.to_start()
    scheduler.finished("a", "failed")
    assert scheduler.cancel("cancelled by SIGINT") is True
    assert [g.status for g in scheduler.not_started()] == ["cancelled"]


def _weighed(name: str, expected: float | None, host: str = "h", part: int = 0) -> Job:
    return Job(
        name,
        f"rsync://{host}:873/m/{name}/",
        Path(f"/d/{name}"),
        RsyncArgv("rsync", "", ""),
        expected=expected,
        part=part,
        parts=4 if part else 0,
    )


def test_the_heaviest_jobs_start_first_and_unknown_ones_before_them():
    jobs = [
        _weighed("small", 10),
        _weighed("big", 1_000, part=1),
        _weighed("new", None),
        _weighed("big", 900, part=2),
        _weighed("mid", 500),
    ]
    scheduler = Scheduler(jobs, slots=5)
    started = scheduler.to_start()
    assert [job.key for job in started] == ["new", "big 1/4", "big 2/4", "mid", "small"]


def test_no_more_than_max_per_host_run_on_one_host_and_others_go_ahead():
    jobs = [
        _weighed("a", 50, "one"),
        _weighed("b", 40, "one"),
        _weighed("c", 30, "one"),
        _weighed("d", 20, "two"),
    ]
    scheduler = Scheduler(jobs, slots=4, max_per_host=2)
    assert _names(scheduler.to_start()) == ["a", "b", "d"]  # c waits for a slot on "one"
    assert scheduler.to_start() == []
    scheduler.finished("d", "success")
    assert scheduler.to_start() == []  # a free slot, but not on c's host
    scheduler.finished("a", "success")
    assert _names(scheduler.to_start()) == ["c"]


def test_parts_are_counted_by_their_own_key():
    jobs = [_weighed("t", 10, part=1), _weighed("t", 9, part=2)]
    scheduler = Scheduler(jobs, slots=2)
    assert [job.key for job in scheduler.to_start()] == ["t 1/4", "t 2/4"]
    scheduler.finished("t 1/4", "success")
    assert scheduler.running == {"t 2/4"}
