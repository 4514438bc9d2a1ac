"""Runs of output lines (pdbsync.messages.OutputLines) rendered in bulk must give, byte
for byte, what rendering their events one at a time gives: text with and without the
stats block hidden, JSON, ``--events`` and the JUnit stderr tails.

The reference is the event-by-event path (``Renderer.event``), which the rest of the
suite checks against real rsync runs; random streams mix the lines that take the slow
paths: rsync's ``--stats`` lines, blank lines, final and ordinary progress redraws,
stderr, parts of a split target, quotes, backslashes and non-ASCII text.
"""

from __future__ import annotations

import io
import random

import orjson
import pytest

from pdbsync.events import make_event
from pdbsync.messages import EventBatch, OutputLines
from pdbsync.report.artifacts import StderrTail
from pdbsync.report.event_log import EventLog
from pdbsync.report.render import JsonRenderer, TextRenderer, json_lines
from pdbsync.rsync.output import parse_progress
from pdbsync.units import progress_text

TS = "2026-12-03T03:00:00.000000Z"

#: Lines chosen to hit every branch: itemized names, rsync's stats block, blank lines,
#: text that looks like JSON separators, escapes, non-ASCII and control characters.
LINES = [
    ">f+++++++++ 00/100d.cif.gz",
    "cd+++++++++ structures/",
    "sifts/xml/1abc.xml.gz",
    "Number of files: 1,234 (reg: 1,000, dir: 234)",
    "Number of regular files transferred: 7",
    "Total file size: 1,234,567 bytes",
    "Total transferred file size: 70 bytes",
    "sent 1,234 bytes  received 5,678 bytes  1,000.00 bytes/sec",
    "total size is 1,234,567  speedup is 178.57",
    "",
    "   ",
    'a "quoted" name","with","separators',
    '  "Please cite: Berman et al.",',
    'ends in a quote and comma ",',
    "ends with a backslash \\",
    '\\","',
    '\\",',
    "caf\u00e9 \u00fc\u00df \u2603 \U0001f9ec",
    "tab\there, bell\x07, escape\x1b[0m",
    "Never mind: a motd line",
]


def _progress(percent: int) -> dict:
    """The progress event a worker makes of an rsync redraw at ``percent``."""
    counts = f"(xfr#{percent}, to-chk={100 - percent}/100)"
    line = f"  {percent},000  {percent}%  1.00MB/s  0:00:01 {counts}"
    fields = parse_progress(line)
    assert fields is not None
    return make_event("progress", "t", progress_text(fields), TS, **fields)


def _stream(seed: int, marks: dict | None) -> list[dict | OutputLines]:
    """A random run of what a worker sends for target ``t``, ending with its result."""
    rng = random.Random(seed)
    items: list[dict | OutputLines] = []
    for _ in range(rng.randint(1, 30)):
        roll = rng.random()
        if roll < 0.15:
            event = _progress(rng.choice([10, 50, 99, 100]))
            if marks:
                event.update(marks)
            items.append(event)
        else:
            stream = "stderr" if roll < 0.3 else "stdout"
            lines = [rng.choice(LINES) for _ in range(rng.randint(0, 8))]
            items.append(OutputLines("t", TS, stream, lines, marks))
    stats = {"files_transferred": 7} if rng.random() < 0.5 else {}
    finished = make_event("sync_finished", "t", "Completed", TS, result={"stats": stats})
    if marks:
        finished.update(marks)
        finished["type"] = "part_finished"
    items.append(finished)
    return items


def _render(renderer, items: list[dict | OutputLines], bulk: bool) -> None:
    for item in items:
        if not isinstance(item, OutputLines):
            renderer(item)
        elif bulk:
            renderer.output_lines(item)
        else:
            for event in item.events():
                renderer(event)
        renderer.flush()


MARKS = [None, {"part": 2, "parts": 4}]


@pytest.mark.parametrize("seed", range(100))
@pytest.mark.parametrize("show_stats", [False, True])
@pytest.mark.parametrize("isatty", [False, True])
def test_text_in_bulk_is_the_text_of_each_event(seed, show_stats, isatty):
    items = _stream(seed, MARKS[seed % 2])
    outputs = []
    for bulk in (False, True):
        out = io.BytesIO()
        _render(TextRenderer(out, isatty=isatty, show_stats=show_stats), items, bulk)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    assert outputs[0], "nothing was rendered: the comparison proves nothing"


@pytest.mark.parametrize("seed", range(60))
def test_json_in_bulk_is_orjson_of_each_event(seed):
    rng = random.Random(seed)
    lines = [rng.choice(LINES) for _ in range(rng.randint(1, 40))]
    if seed % 3 == 0:  # arbitrary text, heavy in the characters JSON escapes
        alphabet = '"\\,:{}[] \t\n\x00\x1f\x7f\u2028\ufffd\U0001f9ec'
        lines = [
            "".join(rng.choice(alphabet) if rng.random() < 0.7 else chr(rng.randint(1, 0x2FFF))
                    for _ in range(rng.randint(0, 12)))
            for _ in range(rng.randint(2, 30))
        ]  # fmt: skip
    item = OutputLines('name "x"\\', TS, rng.choice(["stdout", "stderr"]), lines, MARKS[seed % 2])
    expected = b"".join(orjson.dumps(event) + b"\n" for event in item.events())
    assert json_lines(item) == expected
    assert [orjson.loads(line)["line"] for line in expected.splitlines()] == lines


def test_json_of_no_lines_is_nothing():
    assert json_lines(OutputLines("t", TS, "stdout", [])) == b""


@pytest.mark.parametrize("seed", range(20))
def test_events_file_and_stdout_in_bulk_match_each_event(seed):
    items = _stream(seed, MARKS[seed % 2])
    written = []
    for bulk in (False, True):
        stdout, events = io.BytesIO(), io.BytesIO()
        log = EventLog(JsonRenderer(stdout), events, "--events x")
        _render(log, items, bulk)
        written.append((stdout.getvalue(), events.getvalue()))
    assert written[0] == written[1]
    assert written[0][0] == written[0][1], "--events holds what --format json prints"


@pytest.mark.parametrize("seed", range(20))
def test_junit_stderr_tails_in_bulk_match_each_event(seed):
    items = _stream(seed, None)
    tails = []
    for bulk in (False, True):
        tail = StderrTail(TextRenderer(io.BytesIO(), isatty=False))
        _render(tail, items, bulk)
        tails.append(tail.tails())
    assert tails[0] == tails[1]


def test_a_batch_expands_to_its_events_in_order():
    first = make_event("progress", "t", "1%", TS)
    batch = EventBatch([first, OutputLines("t", TS, "stdout", ["a", "b"], {"part": 1, "parts": 2})])
    events = batch.expanded()
    assert events[0] is first
    assert [(e["line"], e["part"], e["parts"], e["type"]) for e in events[1:]] == [
        ("a", 1, 2, "output"),
        ("b", 1, 2, "output"),
    ]


def test_a_sink_that_answers_every_attribute_still_gets_every_event():
    """A mock or proxy ``on_event`` has an ``output_lines`` attribute it never asked
    for: it must get output events one by one like any callable."""
    from unittest import mock

    from pdbsync.messages import lines_sink

    sink = mock.MagicMock()
    lines = OutputLines("t", TS, "stdout", ["a", "b"])
    lines_sink(sink)(lines)
    assert [call.args[0] for call in sink.call_args_list] == lines.events()
    sink.output_lines.assert_not_called()
    renderer = JsonRenderer(io.BytesIO())
    assert lines_sink(renderer) == renderer.output_lines
