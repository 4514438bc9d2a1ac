"""rsync's language: argv, exit codes and which failures are worth a retry."""

from __future__ import annotations

import pytest

from pdbsync import rsync


def test_argv_is_flags_progress_stats_then_source_and_dest():
    argv = rsync.build_argv("/usr/bin/rsync", "host::mod/x/", "/srv/pdb/x", ["-a"])
    assert argv == [
        "/usr/bin/rsync",
        "-a",
        "--partial-dir=.rsync-partial",
        "--info=progress2",
        "--stats",
        "--",
        "host::mod/x/",
        "/srv/pdb/x/",
    ]


def test_a_given_partial_dir_is_not_doubled():
    argv = rsync.build_argv("rsync", "h::m/", "/d", ["-a", "--partial-dir=.p"])
    assert [a for a in argv if a.startswith("--partial-dir")] == ["--partial-dir=.p"]


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (0, "success"),
        (5, "error starting client-server protocol"),
        (10, "error in socket I/O"),
        (23, "partial transfer due to error"),
        (35, "timeout waiting for daemon connection"),
        (99, "unknown rsync exit code"),
        (-9, "killed by signal 9"),
        (None, "did not finish"),
    ],
)
def test_exit_meanings(code, meaning):
    assert rsync.exit_meaning(code) == meaning


@pytest.mark.parametrize("code", [5, 10, 12, 23, 24, 30, 35])
def test_network_failures_are_transient(code):
    assert rsync.is_transient(code, ["rsync: read error: Connection reset by peer (104)"])


@pytest.mark.parametrize("code", [1, 2, 3, 4, 11, 20, 25, 0, -15])
def test_usage_signals_and_local_errors_are_not_transient(code):
    assert not rsync.is_transient(code, [])


@pytest.mark.parametrize(
    ("code", "stderr"),
    [
        (5, "@ERROR: Unknown module 'ftp_dta'"),
        (5, "@ERROR: auth failed on module x"),
        (23, 'rsync: write failed on "/d/x": No space left on device (28)'),
        (23, 'rsync: mkdir "/d" failed: Read-only file system (30)'),
        (23, 'rsync: recv_generator: mkdir "/d" failed: Permission denied (13)'),
    ],
)
def test_shared_codes_with_permanent_causes_are_not_retried(code, stderr):
    assert not rsync.is_transient(code, [stderr])


def test_busy_daemon_is_transient_despite_code_5():
    assert rsync.is_transient(5, ["@ERROR: max connections (10) reached -- try again later"])


def test_progress2_line_is_parsed():
    fields = rsync.parse_progress(
        "      1,234,567  45%   10.20MB/s    0:01:23 (xfr#12, to-chk=100/2000)"
    )
    assert fields == {
        "bytes": 1234567,
        "percent": 45,
        "rate": "10.20MB/s",
        "eta": "0:01:23",
        "files_transferred": 12,
        "files_to_check": 100,
        "files_total": 2000,
    }


def test_progress2_line_without_counts_and_with_ir_chk():
    assert rsync.parse_progress("  0   0%    0.00kB/s    0:00:00")["files_total"] is None
    assert (
        rsync.parse_progress("  9 1% 1.00kB/s 0:00:01 (xfr#1, ir-chk=5/9)")["files_to_check"] == 5
    )


@pytest.mark.parametrize("line", ["sent 1,411 bytes  received 8,649 bytes", "abc 12%", ""])
def test_other_lines_are_not_progress(line):
    assert rsync.parse_progress(line) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("1,234", 1234), ("0", 0), ("1.50K", 1536), ("2M", 2 * 1024**2), ("1.00G", 1024**3)],
)
def test_sizes(text, value):
    assert rsync.parse_size(text) == value
