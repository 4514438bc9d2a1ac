"""Text rendering decisions that need no rsync: colour, NO_COLOR, the live line's shape."""

from __future__ import annotations

import io

from pdbsync.cli.context import Environment
from pdbsync.events import make_event
from pdbsync.report.render import TextRenderer, live_line, plan_block

_PLAN = {
    "delete_enabled": True,
    "files_total": 1500,
    "total_size": 4_000_000,
    "to_create": 3,
    "to_update": 1,
    "to_delete": 1204,
    "bytes_to_transfer": 12_000,
    "deletion_sample": ["old/1abc.cif.gz"],
}


def _progress(name: str, percent: int) -> dict:
    fields = {
        "bytes": percent * 1000,
        "percent": percent,
        "rate": "10.20MB/s",
        "eta": "0:01:23",
        "files_transferred": 1,
        "files_to_check": 5,
        "files_total": 10,
    }
    return make_event("progress", name, f"{percent}%", **fields)


def test_no_color_turns_colour_off_even_on_a_terminal():
    assert Environment(io.BytesIO(), io.StringIO(), True, {}).color
    assert not Environment(io.BytesIO(), io.StringIO(), True, {"NO_COLOR": "1"}).color
    assert not Environment(io.BytesIO(), io.StringIO(), False, {}).color
    event = make_event("plan", "pdb", "plan", **_PLAN)
    assert "[pdb] WILL DELETE 1,204 files\n" in plan_block(event, color=False)
    assert "\x1b[1;31mWILL DELETE 1,204 files\x1b[0m" in plan_block(event, color=True)


def test_live_line_redraws_over_itself_and_ordinary_lines_land_above_it():
    out = io.BytesIO()
    renderer = TextRenderer(out, isatty=True, columns=60)
    renderer.event(_progress("a", 10))
    renderer.flush()
    renderer.event(_progress("a", 20))
    renderer.event(make_event("output", "a", "a line", stream="stdout", line="a line"))
    renderer.flush()
    renderer.event(make_event("sync_finished", "a", "Completed in 1.0s", result={}))
    renderer.flush()
    assert out.getvalue().decode() == (
        "[a] 10% 10.20MB/s eta 0:01:23"
        + "\r" + " " * 29 + "\r"
        + "[a] a line\n[a] 20% 10.20MB/s eta 0:01:23"
        + "\r" + " " * 29 + "\r"
        + "[a] Completed in 1.0s\n"
    )  # fmt: skip


def test_live_line_never_wraps():
    parts = [f"[target-{i}] 45% 10.20MB/s eta 0:01:23" for i in range(5)]
    line = live_line(parts, 79)
    assert len(line) == 79 and line.endswith("...")
    assert live_line(parts[:1], 79) == parts[0]


def test_off_a_terminal_progress_is_plain_lines_without_carriage_returns():
    out = io.BytesIO()
    renderer = TextRenderer(out, isatty=False, color=True)  # colour asked, but not a tty
    for percent in (10, 20, 100):
        renderer.event(_progress("a", percent))
    renderer.event(make_event("sync_finished", "a", "Completed in 1.0s", result={}))
    renderer.event(make_event("plan", "b", "plan", **_PLAN))
    renderer.flush()
    text = out.getvalue().decode()
    assert text.startswith("[a] 10%\n[a] 100%\n[a] Completed in 1.0s\n")
    assert "\r" not in text and "\x1b" not in text
