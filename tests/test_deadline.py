"""--deadline: the rule (pure, with a given clock) and a real run that meets one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from conftest import LiveRun, assert_valid_events, run_cli, write_config

from pdbsync.errors import UsageError
from pdbsync.rsync.argv import RsyncArgv
from pdbsync.run.deadline import Deadline, parse_deadline, resolve_deadline
from pdbsync.run.jobs import Job
from pdbsync.run.scheduler import RunState, Scheduler
from pdbsync.times import parse_iso, parse_utc, unix_seconds

NOW = 1_800_000_000.0


def _jobs(*names: str) -> list[Job]:
    return [
        Job(name, f"h::m/{name}/", Path(f"/d/{name}"), RsyncArgv("rsync", "", "")) for name in names
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+90m", NOW + 5400),
        ("+1h30m", NOW + 5400),
        ("1800003600", 1800003600.0),
        ("none", None),
        ("2027-01-15T06:00:00Z", datetime.fromisoformat("2027-01-15T06:00:00+00:00").timestamp()),
    ],
)
def test_deadline_values(text, expected):
    assert parse_deadline(text, NOW) == expected


def test_a_time_of_day_is_its_next_occurrence():
    at = parse_deadline("00:00", NOW)
    assert NOW < at <= NOW + 86400
    assert datetime.fromtimestamp(at).strftime("%H:%M:%S") == "00:00:00"


@pytest.mark.parametrize("text", ["soon", "+", "+5", "25:00", "2027-13-01"])
def test_unreadable_deadlines_are_refused(text):
    with pytest.raises(ValueError):
        parse_deadline(text, NOW)


def test_a_given_deadline_in_the_past_is_a_usage_error():
    with pytest.raises(UsageError, match="--deadline 1000: the deadline has already passed"):
        resolve_deadline("1000", {}, now=NOW)


def test_outside_slurm_there_is_no_deadline_unless_given():
    assert resolve_deadline(None, {}, now=NOW) is None
    inside = {"SLURM_JOB_ID": "5", "SLURM_JOB_END_TIME": str(int(NOW) + 3600)}
    rule = resolve_deadline(None, inside, now=NOW)
    assert rule is not None and rule.at == NOW + 3600 and "Slurm job 5" in rule.source


def test_jobs_expected_to_overrun_are_skipped_and_the_rest_start():
    rule = Deadline(at=NOW + 100, source="--deadline +100s", margin=10, expected={"a": 200, "c": 5})
    scheduler = Scheduler(_jobs("a", "b", "c", "d"), slots=2, deadline=rule)
    assert scheduler.tick(NOW) is False
    assert [job.name for job in scheduler.to_start()] == ["b", "c"]  # a would overrun
    [gone] = scheduler.not_started()
    assert (gone.job.name, gone.status) == ("a", "skipped")
    assert "expected to take 3m 20s" in gone.reason and "1m 30s left" in gone.reason
    assert not scheduler.done


def test_at_the_margin_running_jobs_stop_and_waiting_ones_are_skipped():
    rule = Deadline(at=NOW + 100, source="--deadline +100s", margin=10)
    scheduler = Scheduler(_jobs("a", "b", "c"), slots=1, deadline=rule)
    scheduler.tick(NOW)
    scheduler.to_start()
    assert scheduler.tick(NOW + 89) is False
    assert scheduler.tick(NOW + 90) is True  # stop now
    assert scheduler.tick(NOW + 91) is False  # once
    assert scheduler.state is RunState.STOPPING
    assert scheduler.stop_cause.startswith("stopped 10s before the deadline")
    assert [(g.job.name, g.status) for g in scheduler.not_started()] == [
        ("b", "skipped"),
        ("c", "skipped"),
    ]


def test_a_run_stops_cleanly_before_its_deadline(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "stalled": {"url": mirror.url("stall", "sifts/"), "dest": "stalled"},
            "queued": {"url": mirror.url("ftp_data", "emdb/"), "dest": "queued"},
        },
    )
    run = LiveRun(
        "--config",
        str(config),
        "sync",
        "--all",
        "--format",
        "json",
        "--deadline",
        "+4s",
        "--deadline-margin",
        "1.5",
    )
    code, events, stderr = run.finish(timeout=30)  # the stalled transfer alone takes 60 s
    assert code == 1, stderr
    assert_valid_events(events)
    deadline = events[0]["deadline"]
    assert deadline["source"] == "--deadline +4s" and deadline["margin_s"] == 1.5
    summary = events[-1]["summary"]
    assert summary["interrupted"] is None
    stalled, queued = summary["results"]
    assert stalled["status"] == "cancelled"
    assert "stopped 1.5s before the deadline" in stalled["error"]
    assert queued["status"] == "skipped" and "deadline" in queued["error"]
    # Not stopped early: the stalled transfer ran until the margin before the deadline
    # (``at`` is shown to the second, so at most a second earlier than the real one).
    stop_at = unix_seconds(parse_iso(deadline["at"])) - 1.5
    finished = next(e for e in events if e["type"] == "sync_finished" and e["name"] == "stalled")
    assert unix_seconds(parse_utc(finished["ts"])) >= stop_at - 0.001
    assert [e["name"] for e in events if e["type"] == "sync_started"] == ["stalled"]


def test_a_bad_deadline_is_one_line_and_exit_2(four_targets):
    result = run_cli("--config", str(four_targets), "sync", "--deadline", "tomorrowish")
    assert result.code == 2
    assert result.stderr.startswith("pdb-sync: error: --deadline: expected +DURATION")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--deadline", "99999999999999999999"), "'99999999999999999999' is after the year 9998"),
        (("--deadline", "+99999999h"), "'+99999999h' is after the year 9998"),
        (("--deadline", "-1h"), "a deadline is a time to come, got '-1h'"),
        (("--deadline=-1h",), "a deadline is a time to come, got '-1h'"),
        (("--deadline", "²"), "expected a whole number (digits 0-9), got '²'"),
        (("--deadline", "+٣h"), "got '٣h'"),
        (("--deadline", "\u0661\u0668:\u0663\u0660"), "got '\u0661\u0668:\u0663\u0660'"),
    ],
)
def test_an_out_of_range_or_foreign_deadline_is_one_line_and_exit_2(four_targets, args, message):
    result = run_cli("--config", str(four_targets), "sync", *args)
    assert result.code == 2, result.stderr
    assert result.stderr.startswith("pdb-sync: error: --deadline: ")
    assert message in result.stderr and result.stderr.count("\n") == 1
