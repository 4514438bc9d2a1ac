"""Text mode hides the ``--stats`` block pdb-sync adds for itself (unless asked), and says
``in`` rather than ``eta`` once a transfer is complete."""

from __future__ import annotations

import io
import json

import pytest
from conftest import run_cli, write_config
from test_numbers import FAKE_STATS_MOTD, motd_mirror  # noqa: F401 - the fixture

from pdbsync.events import make_event
from pdbsync.report.render import TextRenderer
from pdbsync.units import progress_text

STATS_BLOCK = [
    "",
    "Number of files: 3 (reg: 2, dir: 1)",
    "Number of created files: 0",
    "Total file size: 1,234 bytes",
    "",
    "sent 10 bytes  received 20 bytes  60.00 bytes/sec",
    "total size is 1,234  speedup is 41.13",
]


def _output(name: str, line: str) -> dict:
    return make_event("output", name, line, stream="stdout", line=line)


def _finished(name: str, stats: dict) -> dict:
    return make_event("sync_finished", name, "Completed", result={"stats": stats})


def _render(events: list[dict], show_stats: bool = False) -> list[str]:
    out = io.BytesIO()
    renderer = TextRenderer(out, isatty=False, show_stats=show_stats)
    for event in events:
        renderer.event(event)
    renderer.flush()
    return out.getvalue().decode().splitlines()


def test_rsyncs_closing_block_is_dropped_once_the_result_has_stats():
    block = [_output("a", line) for line in STATS_BLOCK]
    lines = _render([_output("a", "a file"), *block, _finished("a", {"files_total": 3})])
    assert lines == ["[a] a file", "[a] Completed"]


def test_the_block_is_shown_when_asked():
    events = [*(_output("a", x) for x in STATS_BLOCK), _finished("a", {"files_total": 3})]
    assert _render(events, show_stats=True) == [f"[a] {x}" for x in STATS_BLOCK] + ["[a] Completed"]


def test_stats_like_lines_followed_by_more_output_are_shown_in_order():
    """A motd that reads like statistics is not rsync's closing block: shown, in place."""
    events = [
        _output("a", "Welcome"),
        _output("a", "Number of files: 5"),
        _output("a", "Total file size: 999 bytes"),
        _output("a", ""),
        _output("a", "a file"),
        _finished("a", {"files_total": 3}),
    ]
    assert _render(events) == [
        "[a] Welcome",
        "[a] Number of files: 5",
        "[a] Total file size: 999 bytes",
        "[a] ",
        "[a] a file",
        "[a] Completed",
    ]


def test_held_lines_are_shown_when_the_target_ends_without_stats():
    events = [_output("a", "Number of files: 5"), _finished("a", {})]
    assert _render(events) == ["[a] Number of files: 5", "[a] Completed"]


def test_targets_are_held_apart():
    events = [
        _output("a", "Number of files: 1"),
        _output("b", "b file"),
        _finished("b", {}),
        _finished("a", {"files_total": 1}),
    ]
    assert _render(events) == ["[b] b file", "[b] Completed", "[a] Completed"]


@pytest.mark.parametrize(("percent", "word"), [(45, "eta"), (99, "eta"), (100, "in")])
def test_the_time_column_says_in_at_100_percent(percent, word):
    fields = {"percent": percent, "rate": "1.00MB/s", "eta": "0:00:09", "bytes": 10}
    assert progress_text(fields).startswith(f"{percent}% 1.00MB/s {word} 0:00:09 (")


def _config(mirror, tmp_path):
    return write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"}},
    )


@pytest.mark.parametrize(
    ("flags", "shown"), [((), False), (("--rsync-stats",), True), (("-v",), True)]
)
def test_text_mode_shows_the_block_only_when_asked(mirror, tmp_path, flags, shown):
    config = _config(mirror, tmp_path)
    result = run_cli("--config", str(config), "sync", "sifts", *flags)
    assert result.code == 0, result.stderr
    assert ("Number of files:" in result.text) is shown
    assert ("speedup is" in result.text) is shown
    assert "[sifts] Completed in" in result.text
    # the run's last progress line reports the time it took
    final = [line for line in result.text.splitlines() if "% " in line][-1]
    assert final.startswith("[sifts] 100% ") and " in 0:" in final and " eta " not in final


def test_json_mode_keeps_every_line(mirror, tmp_path):
    config = _config(mirror, tmp_path)
    result = run_cli("--config", str(config), "sync", "sifts", "--format", "json")
    lines = [e["line"] for e in result.events if e["type"] == "output"]
    assert any(line.startswith("Number of files:") for line in lines)
    assert any(line.startswith("total size is") for line in lines)


def test_a_motd_that_reads_like_stats_is_still_shown(motd_mirror, tmp_path):  # noqa: F811
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"sifts": {"url": motd_mirror.url("ftp_data", "sifts/"), "dest": "sifts"}},
    )
    result = run_cli("--config", str(config), "sync", "sifts")
    assert result.code == 0, result.stderr
    shown = [line.removeprefix("[sifts] ") for line in result.text.splitlines()]
    motd = [line for line in FAKE_STATS_MOTD.splitlines() if line.strip()]
    start = shown.index(motd[0])
    assert [line for line in shown[start:] if line.strip()][: len(motd)] == motd
    assert shown.count("Number of files: 5") == 1  # the motd's, not rsync's block
    assert not any(line.startswith("Number of created files:") for line in shown)
    assert json.loads(json.dumps(result.text))  # plain text, nothing else


def test_a_progress_redraw_releases_held_lines_first():
    redraw = make_event(
        "progress", "a", "5% 1kB/s eta 0:00:09 (1 B)", percent=5, rate="1kB/s", eta="0:00:09"
    )
    events = [_output("a", "Number of files: 5"), redraw, _finished("a", {"files_total": 3})]
    assert _render(events) == [
        "[a] Number of files: 5",
        "[a] 5% 1kB/s eta 0:00:09 (1 B)",
        "[a] Completed",
    ]
