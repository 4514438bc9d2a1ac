"""Worker logic that needs no rsync: backoff, failure reasons, batching of events."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdbsync.jobs import Job
from pdbsync.worker import BATCH_EVENTS, _Attempt, backoff_delay, failure_reason


@pytest.mark.parametrize(
    ("attempt", "base"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (7, 30), (20, 30)]
)
def test_backoff_doubles_up_to_thirty_seconds_with_a_little_jitter(attempt, base):
    delays = [backoff_delay(attempt, None) for _ in range(50)]
    assert all(base <= d <= base * 1.1 for d in delays)
    assert len(set(delays)) > 1, "no jitter: parallel targets would retry in lockstep"


def test_fixed_delay_wins():
    assert backoff_delay(5, 7.5) == 7.5


def test_failure_reason_prefers_the_daemon_error_over_the_exit_code_line():
    stderr = [
        "@ERROR: Unknown module 'ftp_dta'",
        "rsync error: error starting client-server protocol (code 5) at main.c(1863)",
    ]
    assert failure_reason(stderr) == "@ERROR: Unknown module 'ftp_dta'"


def test_failure_reason_takes_the_first_rsync_cause():
    stderr = [
        'rsync: [Receiver] mkdir "/d/x" failed: Read-only file system (30)',
        "*** Skipping any contents from this failed directory ***",
        'rsync: [Receiver] mkdir "/d/y" failed: Read-only file system (30)',
        "rsync error: some files/attrs were not transferred (code 23)",
    ]
    assert failure_reason(stderr) == stderr[0]


def test_failure_reason_of_nothing_is_none():
    assert failure_reason(["", "  "]) is None


def test_lines_are_sent_in_batches_not_one_message_each():
    sent = []
    attempt = _Attempt(Job("t", "h::m/", Path("/x"), ("rsync",)), sent.append)
    attempt.handle_lines("stdout", [f"file{i}".encode() for i in range(BATCH_EVENTS * 2 + 7)])
    attempt.flush()
    assert [len(batch) for _, batch in sent] == [BATCH_EVENTS, BATCH_EVENTS, 7]
    assert [e["line"] for _, batch in sent for e in batch][-1] == f"file{BATCH_EVENTS * 2 + 6}"


def test_progress_redraws_are_thinned_but_the_last_one_is_kept():
    sent = []
    attempt = _Attempt(Job("t", "h::m/", Path("/x"), ("rsync",)), sent.append)
    redraws = [
        f"  {i},000  {i}%  1.00MB/s  0:00:0{i % 10} (xfr#{i}, to-chk={100 - i}/100)"
        for i in range(1, 101)
    ]
    attempt.handle_lines("stdout", [r.encode() for r in redraws] + [b"", b"Number of files: 1"])
    attempt.flush()
    events = [e for _, batch in sent for e in batch]
    progress = [e for e in events if e["type"] == "progress"]
    assert 1 <= len(progress) < 10
    assert progress[-1]["percent"] == 100, "the final redraw was dropped"
    assert events.index(progress[-1]) < events.index(next(e for e in events if e.get("line") == ""))
