"""The rsync language: --stats, -h sizes, progress2 and itemized lines.

Most cases parse real rsync output captured from the local daemon by
``scripts/capture_rsync_output.py`` (tests/fixtures/rsync); the numbers they are checked
against were counted from the trees on disk at capture time, not parsed from rsync.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from pdbsync.rsync import argv as rsync_argv
from pdbsync.rsync import exits, output, program
from pdbsync.rsync.lines import LineSplitter


def test_argv_is_flags_progress_stats_then_source_and_dest():
    # partial files are the flags' business (options.build_flags), not the argv's
    argv = rsync_argv.RsyncArgv("/usr/bin/rsync", "host::mod/x/", "/srv/pdb/x", ("-a",)).render()
    assert argv == [
        "/usr/bin/rsync",
        "-a",
        "--info=progress2",
        "--stats",
        "--",
        "host::mod/x/",
        "/srv/pdb/x/",
    ]


def test_a_given_partial_dir_is_not_doubled():
    argv = rsync_argv.RsyncArgv("rsync", "h::m/", "/d", ("-a", "--partial-dir=.p")).render()
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
    assert exits.exit_meaning(code) == meaning


#: What rsync 3.5 really prints on stderr when the daemon hangs up on a missing path.
MISSING_PATH = [
    'rsync: [sender] change_dir "/x" (in ftp_data) failed: No such file or directory (2)',
    "rsync error: some files/attrs were not transferred (see previous errors) (code 23) "
    "at main.c(1956) [Receiver=3.5.0]",
    "rsync: [Receiver] read error: Connection reset by peer (104)",
]
CONNECTION_RESET = ["rsync: [Receiver] read error: Connection reset by peer (104)"]


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (10, "error in socket I/O"),
        (12, "error in rsync protocol data stream"),
        (24, "partial transfer due to vanished source files"),
        (30, "timeout in data send/receive"),
        (35, "timeout waiting for daemon connection"),
    ],
)
def test_network_and_remote_hiccups_are_transient_by_their_code_alone(code, why):
    assert exits.exit_meaning(code) == why
    assert exits.is_transient(code, [])
    assert exits.is_transient(code, CONNECTION_RESET)


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 6, 11, 13, 14, 15, 16, 19, 20, 21, 22, 23, 25])
def test_other_codes_are_not_transient_whatever_stderr_says(code):
    assert not exits.is_transient(code, [])
    assert not exits.is_transient(code, CONNECTION_RESET)
    assert not exits.is_transient(code, ["rsync: connection unexpectedly closed", "timeout"])


@pytest.mark.parametrize("code", [None, 0, -15, 99])
def test_success_signals_and_unknown_codes_are_not_transient(code):
    assert not exits.is_transient(code, CONNECTION_RESET)


def test_missing_source_path_is_not_retried_despite_the_connection_reset():
    assert not exits.is_transient(23, MISSING_PATH)


@pytest.mark.parametrize("code", [10, 12, 23, 24, 30])
@pytest.mark.parametrize(
    "stderr",
    [
        'rsync: [Receiver] write failed on "/d/x": No space left on device (28)',
        'rsync: [Receiver] mkdir "/d" failed: Read-only file system (30)',
        'rsync: [Receiver] recv_generator: mkdir "/d" failed: Permission denied (13)',
        'rsync: [Receiver] write failed on "/d/x": Disk quota exceeded (122)',
    ],
)
def test_permanent_local_causes_veto_a_retry_for_any_code(code, stderr):
    assert not exits.is_transient(code, [stderr, *CONNECTION_RESET])


@pytest.mark.parametrize(
    "stderr",
    [
        "@ERROR: Unknown module 'ftp_dta'",
        "@ERROR: auth failed on module x",
        "@ERROR: access denied to ftp_data from localhost (127.0.0.1)",
    ],
)
def test_exit_5_refusals_are_not_retried(stderr):
    assert not exits.is_transient(5, [stderr])


def test_busy_daemon_is_transient_despite_code_5():
    assert exits.is_transient(5, ["@ERROR: max connections (10) reached -- try again later"])


def test_busy_daemon_with_a_full_disk_is_still_not_retried():
    busy = "@ERROR: max connections (10) reached -- try again later"
    assert not exits.is_transient(5, [busy, "mkdir failed: No space left on device (28)"])


def test_the_busy_phrase_alone_does_not_make_other_codes_transient():
    busy = ["@ERROR: max connections (10) reached -- try again later"]
    assert not exits.is_transient(23, busy)
    assert not exits.is_transient(5, ["max connections reached, please retry"])


def test_progress2_line_is_parsed():
    fields = output.parse_progress(
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
    assert output.parse_progress("  0   0%    0.00kB/s    0:00:00")["files_total"] is None
    assert (
        output.parse_progress("  9 1% 1.00kB/s 0:00:01 (xfr#1, ir-chk=5/9)")["files_to_check"] == 5
    )


@pytest.mark.parametrize("line", ["sent 1,411 bytes  received 8,649 bytes", "abc 12%", ""])
def test_other_lines_are_not_progress(line):
    assert output.parse_progress(line) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("1,234", 1234), ("0", 0), ("1.50K", 1536), ("2M", 2 * 1024**2), ("1.00G", 1024**3)],
)
def test_sizes_in_units_of_1024(text, value):
    assert output.parse_output_size(text, base=1024) == value


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rsync"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
RUNS = MANIFEST["runs"]


def _lines(name: str) -> list[str]:
    """A fixture's stdout split the way the worker splits it (on \\n and \\r)."""
    splitter = LineSplitter()
    raw = splitter.feed((FIXTURES / f"{name}.out").read_bytes()) + splitter.close()
    return [line.decode() for line in raw]


def _argv(name: str) -> list[str]:
    return ["rsync", *RUNS[name]["flags"]]


def _stats(name: str, base: int | None = None) -> dict:
    """The fields of the ``--stats`` block that ends a fixture's stdout."""
    block = output.StatsBlock(rsync_argv.size_base(_argv(name)) if base is None else base)
    for line in _lines(name):
        block.feed(line)
    return block.fields


@pytest.mark.parametrize("name", ["plain", "compress", "nochange", "delete", "plan_delete"])
def test_exact_stats_match_the_tree_on_disk(name):
    stats = _stats(name)
    for key, value in RUNS[name]["expect"].items():
        if key in output.STATS_FIELDS:
            assert stats[key] == value, key
    source = MANIFEST["source"]
    assert stats["files_total_by_type"] == {"reg": source["files"], "dir": source["dirs"]}
    assert set(stats) == set(output.STATS_FIELDS)


@pytest.mark.parametrize(
    ("name", "base"), [("human", 1000), ("human2", 1024), ("delete_human", 1000)]
)
def test_human_readable_sizes_are_read_in_the_base_the_flags_chose(name, base):
    assert rsync_argv.size_base(_argv(name)) == base
    stats = _stats(name)
    total = MANIFEST["source"]["bytes"]
    # rsync rounds to two decimals of its unit (here M): within half a hundredth of it
    assert abs(stats["total_size"] - total) <= 0.005 * base**2
    wrong_base = _stats(name, 2024 - base)["total_size"]
    assert abs(wrong_base - total) > 0.005 * base**2, "the base made no difference"
    # counts keep exact thousands separators even under -h
    assert stats["files_total"] == RUNS[name]["expect"]["files_total"]
    assert stats["files_transferred"] == RUNS[name]["expect"]["files_transferred"]


def test_compression_shows_in_bytes_received():
    plain, compressed = _stats("plain"), _stats("compress")
    assert compressed["literal_data"] == plain["literal_data"]
    assert compressed["bytes_received"] < plain["bytes_received"]


def test_deletions_are_counted_by_type():
    stats = _stats("delete")
    assert stats["files_deleted"] == RUNS["delete"]["expect"]["files_deleted"]
    assert stats["files_deleted_by_type"] == {"reg": 3, "dir": 2}
    assert stats["files_created_by_type"] == {"reg": 5}


def test_second_run_reports_nothing_transferred():
    stats = _stats("nochange")
    assert stats["files_transferred"] == 0
    assert stats["transferred_size"] == 0
    assert stats["files_created_by_type"] == {}


def test_dry_run_speedup_line_is_read():
    assert _stats("plan_delete")["speedup"] == pytest.approx(86.5, abs=60)
    assert any(line.endswith("(DRY RUN)") for line in _lines("plan_delete"))


@pytest.mark.parametrize("name", ["plan_delete", "delete"])
def test_itemized_lines_count_creations_updates_and_deletions(name):
    counts = output.ItemizedCounts()
    other = [line for line in _lines(name) if not counts.feed(line)]
    expect = RUNS[name]["expect"]
    assert (counts.created, counts.updated, counts.deleted) == (
        expect["to_create"],
        expect["to_update"],
        expect["to_delete"],
    )
    assert counts.created + counts.updated == _stats(name)["files_transferred"]
    assert "obsolete/" in counts.deletion_sample
    assert any(line.startswith("Number of files:") for line in other)
    assert not any(line.startswith(("*deleting", ">f", "cd")) for line in other)


def test_progress_bytes_from_a_real_run_never_go_down():
    values = [output.parse_progress(line) for line in _lines("plain")]
    progress = [v for v in values if v is not None]
    assert len(progress) > 10
    assert all(a["bytes"] <= b["bytes"] for a, b in itertools.pairwise(progress))
    assert progress[-1]["bytes"] == MANIFEST["source"]["bytes"]
    assert progress[-1]["files_to_check"] == 0


@pytest.mark.parametrize(
    ("line", "base", "key", "value"),
    [
        ("Total file size: 5.60G bytes", 1000, "total_size", 5_600_000_000),
        ("Total file size: 5.60G bytes", 1024, "total_size", round(5.6 * 1024**3)),
        ("Total file size: 1,234,567,890,123 bytes", 1000, "total_size", 1_234_567_890_123),
        ("Literal data: 1.50T bytes", 1000, "literal_data", 1_500_000_000_000),
        ("File list size: 0", 1000, "file_list_size", 0),
        ("Number of files transferred: 12", 1000, "files_transferred", 12),  # rsync 3.0
        ("Number of deleted files: 1,204 (reg: 1,200, dir: 4)", 1000, "files_deleted", 1204),
        ("total size is 1,234  speedup is 1,234.56", 1000, "speedup", 1234.56),
        ("File list generation time: 0.125 seconds", 1000, "file_list_generation_s", 0.125),
        (
            "sent 3.87K bytes  received 1.5M bytes  268.17K bytes/sec",
            1000,
            "bytes_per_second",
            268170.0,
        ),
    ],
)
def test_hand_written_stats_lines(line, base, key, value):
    into: dict = {}
    assert output.parse_stats_line(line, into, base)
    assert into[key] == value


@pytest.mark.parametrize(
    "line",
    [
        "",
        "receiving incremental file list",
        "Number of files",
        "sent x bytes",
        "mmCIF/ab/1abc.cif.gz",
    ],
)
def test_other_lines_are_not_stats(line):
    into: dict = {}
    assert not output.parse_stats_line(line, into)
    assert into == {}


def test_by_type_breakdown_of_a_big_count():
    into: dict = {}
    output.parse_stats_line(
        "Number of files: 1,234,567 (reg: 1,200,000, dir: 34,560, link: 7)", into
    )
    assert into["files_total"] == 1_234_567
    assert into["files_total_by_type"] == {"reg": 1_200_000, "dir": 34_560, "link": 7}


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["rsync", "-a"], 1),
        (["rsync", "-ah"], 2),
        (["rsync", "-avhh"], 3),
        (["rsync", "-h", "--human-readable"], 3),
        (["rsync", "-hh", "--no-h"], 0),
        (["rsync", "-e", "ssh -h", "-a"], 1),  # -h inside -e's argument
        (["rsync", "-essh", "-a"], 1),
        (["rsync", "-a", "--", "-h"], 1),  # a source named -h
    ],
)
def test_human_readable_level_from_argv(argv, level):
    assert rsync_argv.human_readable_level(argv) == level


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["rsync", "-a"], False),
        (["rsync", "-a", "--delete"], True),
        (["rsync", "-a", "--delete-after"], True),
        (["rsync", "-a", "--del"], True),
        (["rsync", "-a", "--", "--delete"], False),
    ],
)
def test_deletes_from_argv(argv, expected):
    assert rsync_argv.deletes(argv) is expected


def test_progress_line_with_human_sizes():
    fields = output.parse_progress(
        "          1.23M  45%   10.20MB/s    0:01:23 (xfr#12, to-chk=100/2000)"
    )
    assert fields is not None
    assert fields["bytes"] == 1_230_000
    assert (fields["percent"], fields["eta"], fields["files_to_check"]) == (45, "0:01:23", 100)


# -- the closing --stats block (a motd is not statistics) --------------------------------

FAKE_MOTD = [
    "Welcome to the mirror",
    "Number of files: 5",
    "Number of regular files transferred: 777",
    "Total transferred file size: 999,999,999 bytes",
    "",
]


def _fed(lines: list[str], base: int = 1000) -> output.StatsBlock:
    block = output.StatsBlock(base)
    for line in lines:
        block.feed(line)
    return block


def test_a_motd_before_a_real_run_does_not_touch_its_stats():
    real = _stats("plain")
    block = _fed([*FAKE_MOTD, *_lines("plain")])
    assert block.result(0) == real
    assert real["transferred_size"] == RUNS["plain"]["expect"]["transferred_size"]


def test_a_motd_followed_by_a_transfer_without_stats_gives_no_stats():
    redraws = [line for line in _lines("plain") if output.is_progress(line)]
    assert _fed([*FAKE_MOTD, *redraws, ""]).result(0) == {}
    assert _fed([*FAKE_MOTD, "receiving incremental file list", "x.cif"]).result(0) == {}


def test_a_motd_alone_is_believed_for_no_exit_code_that_ends_before_the_summary():
    block = _fed(FAKE_MOTD)  # a refused transfer: the motd, then nothing
    for code in (None, -15, 1, 5, 10, 12, 20, 30, 35):
        assert block.result(code) == {}, code


@pytest.mark.parametrize("code", [0, 23, 24, 25])
def test_the_closing_block_counts_for_exits_after_which_rsync_prints_it(code):
    assert _fed(_lines("plain")).result(code) == _stats("plain") != {}


def test_stats_lines_outside_a_block_are_ignored():
    block = _fed(["Total transferred file size: 999,999,999 bytes", "Literal data: 5 bytes"])
    assert block.result(0) == {}


def test_a_block_interrupted_by_a_file_name_starting_like_a_stats_line_is_dropped():
    lines = ["Number of files: 3", "Number of created files: 1", "Thesis.txt"]
    assert _fed(lines).result(0) == {}
    assert _fed([*lines, "Number of files: 1"]).result(0)["files_total"] == 1


def test_blank_lines_inside_and_after_the_block_keep_it():
    lines = ["Number of files: 3", "", "sent 1 bytes  received 2 bytes  3.00 bytes/sec", "  "]
    stats = _fed(lines).result(0)
    assert (stats["files_total"], stats["bytes_per_second"]) == (3, 3.0)


def test_feed_says_which_lines_belong_to_the_block():
    block = output.StatsBlock()
    assert not block.feed("Total file size: 5 bytes")  # no block open yet
    assert block.feed("Number of files: 3")
    assert block.feed("Total file size: 5 bytes")
    assert not block.feed("")
    assert not block.feed("mmCIF/ab/1abc.cif.gz")


def _counting_rsync(directory: Path, version: str) -> tuple[Path, Path]:
    """An executable that answers ``--version`` like rsync and counts how often it ran."""
    calls = directory / "calls"
    script = directory / "rsync"
    script.write_text(
        f"#!/bin/sh\necho run >> {calls}\necho 'rsync  version {version}  protocol version 31'\n"
    )
    script.chmod(0o755)
    return script, calls


def test_rsync_version_is_asked_once_across_runs_and_again_when_rsync_changes(tmp_path):
    script, calls = _counting_rsync(tmp_path, "3.2.7")
    for _ in range(3):  # three runs: each process starts with an empty in-memory cache
        program._version_text.cache_clear()
        assert program.inspect_rsync(str(script)).version == (3, 2, 7)
    assert calls.read_text().count("run") == 1
    script.unlink()  # an upgrade replaces the binary
    script, calls = _counting_rsync(tmp_path, "3.4.1")
    program._version_text.cache_clear()
    assert program.inspect_rsync(str(script)).version == (3, 4, 1)
    assert calls.read_text().count("run") == 2


def test_an_unreadable_answer_is_not_remembered(tmp_path):
    script = tmp_path / "rsync"
    script.write_text("#!/bin/sh\necho 'not rsync'\n")
    script.chmod(0o755)
    program._version_text.cache_clear()
    with pytest.raises(program.EnvironmentProblem, match="cannot tell the rsync version"):
        program.inspect_rsync(str(script))
    assert not program._remembered_version_path().exists()


@pytest.mark.parametrize(
    ("line", "final"),
    [
        ("  1,234,567 100%    1.23MB/s    0:00:01 (xfr#40, to-chk=0/40)", True),
        ("          0 100%    0.00kB/s    0:00:00 (xfr#0, to-chk=0/40)", True),
        ("    123,456  42%    1.23MB/s    0:00:01 (xfr#4, to-chk=0/40)", True),
        ("    123,456 100%    1.23MB/s    0:00:01", True),
        ("    123,456  42%    1.23MB/s    0:00:01 (xfr#4, to-chk=12/40)", False),
        ("    123,456  42%    1.23MB/s    0:00:01", False),
        # nothing left among the files listed so far: the renderer's rule always said
        # final, the worker's said not (it matched "to-chk=0/"); one rule now says final
        ("    123,456  42%    1.23MB/s    0:00:01 (xfr#4, ir-chk=0/40)", True),
        ("file 100% done to-chk=0/", False),  # not a redraw at all
    ],
)
def test_one_final_redraw_rule_for_the_worker_and_the_renderer(line, final):
    """The worker holds redraws as text, the renderer as parsed fields: both ask one rule."""
    assert output.is_final_redraw_line(line) is final
    fields = output.parse_progress(line)
    assert (fields is not None and output.is_final_redraw(fields)) is final
