"""Worker logic that needs no rsync: backoff, failure reasons, batching of events."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdbsync.rsync.argv import RsyncArgv
from pdbsync.rsync.exits import failure_reason
from pdbsync.run.jobs import Job
from pdbsync.run.worker import BATCH_EVENTS, _Attempt, backoff_delay


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
    attempt = _Attempt(
        Job("t", "h::m/", Path("/x"), RsyncArgv("rsync", "h::m/", "/x")), sent.append
    )
    attempt.handle_lines("stdout", [f"file{i}".encode() for i in range(BATCH_EVENTS * 2 + 7)])
    attempt.flush()
    assert [len(message.expanded()) for message in sent] == [BATCH_EVENTS, BATCH_EVENTS, 7]
    assert [e["line"] for m in sent for e in m.expanded()] == [
        f"file{i}" for i in range(BATCH_EVENTS * 2 + 7)
    ]


def test_progress_redraws_are_thinned_but_the_last_one_is_kept():
    sent = []
    attempt = _Attempt(
        Job("t", "h::m/", Path("/x"), RsyncArgv("rsync", "h::m/", "/x")), sent.append
    )
    redraws = [
        f"  {i},000  {i}%  1.00MB/s  0:00:0{i % 10} (xfr#{i}, to-chk={100 - i}/100)"
        for i in range(1, 101)
    ]
    attempt.handle_lines("stdout", [r.encode() for r in redraws] + [b"", b"Number of files: 1"])
    attempt.flush()
    events = [e for message in sent for e in message.expanded()]
    progress = [e for e in events if e["type"] == "progress"]
    assert 1 <= len(progress) < 10
    assert progress[-1]["percent"] == 100, "the final redraw was dropped"
    stats = next(e for e in events if e.get("line") == "Number of files: 1")
    assert events.index(progress[-1]) < events.index(stats)
    assert not [e for e in events if e.get("line") == ""], "a blank line is no event"


@pytest.mark.parametrize(
    ("held", "released"),
    [
        (b"  9,000  40%  1.00MB/s  0:00:01 (xfr#4, to-chk=0/10)", True),
        (b"  9,000  40%  1.00MB/s  0:00:01 (xfr#4, ir-chk=0/10)", True),  # as the renderer
        (b"  9,000 100%  1.00MB/s  0:00:01", True),
        (b"  9,000  40%  1.00MB/s  0:00:01 (xfr#4, to-chk=6/10)", False),
    ],
)
def test_a_held_final_redraw_goes_out_before_the_line_after_it(held, released):
    """The final-redraw rule of pdbsync.rsync.output, as the worker applies it: a held
    final redraw is sent before the next line; an ordinary one stays held."""
    sent = []
    attempt = _attempt(sent)
    first = b"  1,000   5%  1.00MB/s  0:00:09 (xfr#1, to-chk=9/10)"
    attempt.handle_lines("stdout", [first, held, b"a file"])  # the first is sent, held waits
    attempt.flush()
    events = [e for message in sent for e in message.expanded()]
    kinds = [(e["type"], e.get("bytes") or e.get("line")) for e in events]
    expect = [("progress", 1000), ("progress", 9000), ("output", "a file")]
    assert kinds == (expect if released else [expect[0], expect[2]])


# -- what a result says was transferred -------------------------------------------------

MOTD = [b"Welcome", b"Number of files: 5", b"Total transferred file size: 999,999,999 bytes", b""]
#: Redraws as rsync prints them: the middle one is in the middle of a file (no xfr#).
REDRAWS = [
    b"          4,096  10%   20.00kB/s    0:00:03 (xfr#3, to-chk=40/50)",
    b"          6,144  15%   20.00kB/s    0:00:02  ",
    b"          8,192  20%   20.00kB/s    0:00:02 (xfr#4, to-chk=39/50)",
    b"          9,000  22%   20.00kB/s    0:00:02  ",
]


def _attempt(sent: list, **job_fields) -> _Attempt:
    return _Attempt(
        Job("t", "h::m/", Path("/x"), RsyncArgv("rsync", "h::m/", "/x"), **job_fields), sent.append
    )


def test_a_motd_read_before_the_transfer_is_not_its_stats_block():
    attempt = _attempt([])
    attempt.handle_lines("stdout", [*MOTD, *REDRAWS])
    assert attempt.stats_block.result(0) == {}


def test_the_last_redraws_say_how_far_a_transfer_without_stats_got():
    attempt = _attempt([])
    attempt.handle_lines("stdout", [*MOTD, *REDRAWS])
    # bytes from the very last redraw, files from the last one that counts them
    assert attempt.transferred_so_far() == (4, 9000)


def test_redraws_are_counted_even_when_quiet_hides_them():
    from pdbsync.config.options import RsyncOptions

    sent = []
    attempt = _attempt(sent, options=RsyncOptions(quiet=True))
    attempt.handle_lines("stdout", REDRAWS)
    attempt.flush()
    assert sent == []
    assert attempt.transferred_so_far() == (4, 9000)


def test_no_redraw_means_nothing_transferred():
    attempt = _attempt([])
    attempt.handle_lines("stdout", MOTD)
    assert attempt.transferred_so_far() == (0, 0)


def test_result_numbers_prefer_the_stats_block_then_the_redraws_and_keep_null_for_no_rsync():
    from pdbsync.run.worker import _transferred

    job = Job("t", "h::m/", Path("/x"), RsyncArgv("rsync", "h::m/", "/x"))
    attempt = _attempt([])
    attempt.handle_lines("stdout", [*REDRAWS, b"", b"Number of files: 9"])
    block = [b"Number of regular files transferred: 7", b"Total transferred file size: 70 bytes"]
    attempt.handle_lines("stdout", block)
    stats = attempt.stats_block.result(0)
    assert _transferred(job, 0, attempt, stats) == (7, 70)
    assert _transferred(job, 20, attempt, attempt.stats_block.result(20)) == (4, 9000)
    assert _transferred(job, None, attempt, {}) == (None, None)  # rsync never started
    assert _transferred(job, 0, None, {}) == (None, None)
    plan = Job("t", "h::m/", Path("/x"), RsyncArgv("rsync", "h::m/", "/x"), plan=True)
    assert _transferred(plan, 0, attempt, stats) == (None, None)
