"""``--report PATH.html`` and ``summary show --format html``: a run as one HTML page.

A mirror admin opening last night's run wants to see it: which targets ran when and
side by side, where the pool sat idle, which part of a split target straggled, where
retries happened, how fast each transfer went. The page is one self-contained file
(inline CSS, a few lines of inline JS for sorting, SVG drawn by the template), so it
opens offline from a CI artifact store or a mail attachment and makes no request.

Everything comes from the summary (``Summary.to_dict()`` or a summary file) and,
optionally, the run's events (:class:`RunTrace`: rsync's progress for the throughput
charts, the failed targets' last stderr lines). The timeline needs each job's pool
``slot`` and ``attempt_log``; a summary written before those fields existed renders
without a timeline. The template is Jinja2 with autoescape on, and every string a
mirror or rsync wrote also goes through :func:`pdbsync.report.render.visible`, so a
hostile stderr line shows as text: no markup, no control or bidi characters.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pdbsync.errors import ExitCode, UsageError
from pdbsync.report.render import Relay, Renderer, visible
from pdbsync.rsync.exits import exit_meaning
from pdbsync.times import parse_utc, seconds_between
from pdbsync.units import human_bytes, seconds_text

if TYPE_CHECKING:
    from pdbsync.messages import OutputLines

#: How many of a target's last stderr lines the report shows under a failure.
STDERR_LINES = 20
#: Progress samples kept per job: past twice this, every other one is dropped (a long
#: run's chart keeps its shape, and memory stays bounded).
MAX_SAMPLES = 400
#: The timeline's drawing width (SVG user units; the page scales it to the window).
TIMELINE_WIDTH = 1000
LANE_HEIGHT = 22
LABEL_WIDTH = 150
CHART_HEIGHT = 46
#: Steps drawn per job in a throughput chart (a long run's samples are merged to fit).
MAX_STEPS = 150

_EXIT_WORDS = {
    ExitCode.OK: "every target succeeded",
    ExitCode.SYNC_FAILED: "one or more targets did not succeed",
    ExitCode.HANGUP: "interrupted by SIGHUP",
    ExitCode.INTERRUPTED: "interrupted (SIGINT or a cancel)",
    ExitCode.USER1: "interrupted by SIGUSR1",
    ExitCode.USER2: "interrupted by SIGUSR2",
    ExitCode.TERMINATED: "interrupted by SIGTERM",
}


@dataclass
class RunTrace:
    """What the report takes from a run's events: each job's progress samples (seconds
    since the epoch, bytes of the attempt so far) and each target's last stderr lines.

    Fed live (``sync --report``: :class:`TraceRecorder` in front of the renderer) or
    from an ``--events`` file (:func:`read_event_logs`), by the same :meth:`event`.
    """

    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    stderr: dict[str, deque[str]] = field(default_factory=dict)

    def event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "progress" and isinstance(event.get("bytes"), int):
            try:
                moment = parse_utc(event["ts"]).timestamp()
            except (KeyError, TypeError, ValueError):
                return
            self._sample(_job_key(event), moment, event["bytes"])
        elif kind == "output" and event.get("stream") == "stderr":
            self._stderr(str(event.get("name")), [str(event.get("line", ""))])

    def output_lines(self, lines: OutputLines) -> None:
        if lines.stream == "stderr":
            self._stderr(lines.name, lines.lines)

    def _sample(self, key: str, moment: float, size: int) -> None:
        kept = self.samples.setdefault(key, [])
        kept.append((moment, size))
        if len(kept) > 2 * MAX_SAMPLES:
            kept[:] = kept[::2]

    def _stderr(self, name: str, lines: Iterable[str]) -> None:
        said = [line for line in lines if line.strip()]
        if said:
            tail = self.stderr.get(name)
            if tail is None:
                tail = self.stderr[name] = deque(maxlen=STDERR_LINES)
            tail.extend(said)


def _job_key(event: Mapping[str, Any]) -> str:
    name = str(event.get("name"))
    return f"{name} {event['part']}/{event['parts']}" if "part" in event else name


class TraceRecorder(Relay):
    """A renderer in front of another that feeds a :class:`RunTrace` (for ``--report``);
    everything is passed on unchanged. Only put in place when ``--report`` asks."""

    def __init__(self, inner: Renderer, trace: RunTrace | None = None) -> None:
        super().__init__(inner)
        self.trace = trace or RunTrace()

    def event(self, event: dict[str, Any]) -> None:
        self.trace.event(event)
        self.inner.event(event)

    def output_lines(self, lines: OutputLines) -> None:
        self.trace.output_lines(lines)
        self.inner.output_lines(lines)


def read_event_logs(paths: Sequence[Path], summary: Mapping[str, Any]) -> RunTrace:
    """A :class:`RunTrace` from ``--events`` files (JSON Lines), keeping the events
    stamped within the summary's run (a file appended to by several runs holds them
    all). UsageError naming the file and line for what is not an event log."""
    start = parse_utc(summary["started_at"]).timestamp()
    end = parse_utc(summary["finished_at"]).timestamp()
    trace = RunTrace()
    for path in paths:
        label = f"--events {path}"
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"{label}: cannot read: {exc.strerror or exc}") from None
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
                moment = parse_utc(event["ts"]).timestamp()
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise UsageError(
                    f"{label}: line {number} is not a pdb-sync event (JSON with a ts)"
                ) from None
            if start - 1 <= moment <= end + 1:
                trace.event(event)
    return trace


# -- the page's data ----------------------------------------------------------------------


@dataclass
class Bar:
    """One attempt (or, with ``kind`` "job", the whole span of a job) on the timeline."""

    kind: str
    target: str
    part: int | None
    attempt: int | None
    slot: int
    start_s: float
    end_s: float
    status: str
    title: str
    x: float = 0.0
    width: float = 0.0
    y: float = 0.0
    #: the words drawn on the bar when they fit ("" otherwise: the hover text has them)
    text: str = ""


@dataclass
class LaneGroup:
    label: str
    lanes: int
    top: float = 0.0
    bars: list[Bar] = field(default_factory=list)


def report_html(summary: Mapping[str, Any], trace: RunTrace | None = None) -> str:
    """The report page for ``summary`` (a sync summary's dict), with the charts and
    stderr of ``trace`` when given."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("pdbsync.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["visible"] = lambda value: visible(str(value))
    environment.filters["bytes"] = human_bytes
    environment.filters["seconds"] = seconds_text
    template = environment.get_template("report.html.j2")
    return template.render(**page(summary, trace or RunTrace()))


def page(summary: Mapping[str, Any], trace: RunTrace) -> dict[str, Any]:
    """Everything the template shows, computed here so the template only lays it out."""
    results = summary["results"]
    timeline = _timeline(summary)
    span = timeline["span_s"] if timeline else summary["timings"]["total_s"]
    return {
        "summary": summary,
        "title": _title(summary),
        "header": _header(summary),
        "totals": summary["totals"],
        "timeline": timeline,
        "rows": [_row(result) for result in results],
        "failures": [
            _failure(result, trace) for result in results if result["status"] != "success"
        ],
        "charts": _charts(summary, trace, span),
        "has_events": bool(trace.samples or trace.stderr),
    }


def _title(summary: Mapping[str, Any]) -> str:
    where = summary.get("host") or ("merged" if summary.get("merge") else "")
    return f"pdb-sync run {summary['started_at']}" + (f" on {where}" if where else "")


def _header(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    code = summary["exit_code"]
    try:
        meaning = _EXIT_WORDS.get(ExitCode(code), "")
    except ValueError:
        meaning = ""
    slurm = summary.get("slurm") or {}
    shard = summary.get("shard")
    rows = [
        ("host", summary.get("host") or ("(several: merged)" if summary.get("merge") else "?")),
        ("Slurm job", slurm.get("job_id") or "-"),
        (
            "array task",
            f"{slurm['array_job_id']}_{slurm['array_task_id']}"
            if slurm.get("array_job_id")
            else "-",
        ),
        ("shard", f"{shard['index']}/{shard['count']}" if shard else "-"),
        ("started", summary["started_at"]),
        ("finished", summary["finished_at"]),
        ("duration", seconds_text(summary["timings"]["total_s"])),
        ("parallel", str(summary["parallel"])),
        ("exit code", f"{code}: {meaning}" if meaning else str(code)),
        ("interrupted", summary.get("interrupted") or "no"),
        ("pdb-sync", summary.get("version", "?")),
    ]
    merge = summary.get("merge")
    if merge:
        rows.append(("shards", f"{len(merge['shards'])} of {merge['expected_shards']}"))
        rows.append(("merge complete", "yes" if merge["complete"] else "no"))
    return rows


def _rate(size: int | None, seconds: float) -> float | None:
    if size is None or seconds <= 0:
        return None
    return size / seconds


def _row(result: Mapping[str, Any]) -> dict[str, Any]:
    size = result["bytes_transferred"]
    rate = _rate(size, result["duration_s"])
    return {
        "name": result["name"],
        "status": result["status"],
        "duration_s": result["duration_s"],
        "bytes": size,
        "rate": rate,
        "files": result["files_transferred"],
        "attempts": result["attempts"],
        "parts": len(result.get("parts") or []) or None,
        "exit_code": result["exit_code"],
        "exit_meaning": result["exit_meaning"],
    }


def _failure(result: Mapping[str, Any], trace: RunTrace) -> dict[str, Any]:
    code = result["exit_code"]
    return {
        "name": result["name"],
        "status": result["status"],
        "exit": f"exit {code}: {result['exit_meaning'] or exit_meaning(code)}"
        if code is not None
        else "no exit code (rsync did not run or did not end)",
        "error": result["error"],
        "stderr": list(trace.stderr.get(result["name"], ())),
    }


# -- the timeline -------------------------------------------------------------------------


def _jobs(result: Mapping[str, Any]) -> list[tuple[int | None, Mapping[str, Any]]]:
    """(part, job) for each job of a target that has timeline data: its parts, or itself."""
    parts = result.get("parts")
    if parts:
        return [(part["part"], part) for part in parts if part.get("attempt_log")]
    return [(None, result)] if result.get("attempt_log") else []


def _groups(summary: Mapping[str, Any]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """The results in lane groups: one per shard of a merged summary, else one."""
    merge = summary.get("merge")
    results = summary["results"]
    if not merge:
        return [("", results)]
    by_name = {result["name"]: result for result in results}
    groups, placed = [], set()
    for shard in merge["shards"]:
        label = f"shard {shard['index']}/{shard['count']}" if shard["index"] else "unsharded"
        if shard.get("host"):
            label += f" on {shard['host']}"
        members = [by_name[n] for n in shard["targets"] if n in by_name and n not in placed]
        placed.update(result["name"] for result in members)
        groups.append((label, members))
    rest = [result for result in results if result["name"] not in placed]
    if rest:
        groups.append(("other", rest))
    return groups


def _timeline(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """Lane groups, bars placed in SVG units, and the time axis; None when no result has
    a slot and an attempt log (an older summary, or nothing ran)."""
    start = summary["started_at"]
    groups: list[LaneGroup] = []
    for label, results in _groups(summary):
        bars = [
            bar
            for result in results
            for part, job in _jobs(result)
            if job.get("slot")
            for bar in _bars(result, part, job, start)
        ]
        if bars:
            lanes = max(bar.slot for bar in bars)
            groups.append(LaneGroup(label, max(lanes, 1), bars=bars))
    if not groups:
        return None
    span = max(
        summary["timings"]["total_s"],
        max(bar.end_s for group in groups for bar in group.bars),
        0.001,
    )
    scale = TIMELINE_WIDTH / span
    top = 24.0  # room for the axis labels
    for group in groups:
        if group.label:
            top += 18
        group.top = top
        for bar in group.bars:
            bar.x = round(LABEL_WIDTH + bar.start_s * scale, 2)
            bar.width = round(max((bar.end_s - bar.start_s) * scale, 1.0), 2)
            lane_top = top + (bar.slot - 1) * LANE_HEIGHT
            bar.y = lane_top + (2 if bar.kind == "job" else 5)
            words = bar.target if bar.part is None else f"{bar.target} {bar.part}"
            if bar.kind == "attempt" and bar.width >= 6.5 * len(words) + 6:
                bar.text = words
        top += group.lanes * LANE_HEIGHT + 6
    running = sum(
        bar.end_s - bar.start_s for g in groups for bar in g.bars if bar.kind == "attempt"
    )
    return {
        "groups": groups,
        #: the share of the pool's slot-seconds in which an rsync ran (one group: one run)
        "busy": running / (summary["parallel"] * span) if len(groups) == 1 else None,
        "width": LABEL_WIDTH + TIMELINE_WIDTH + 10,
        "height": top + 4,
        "span_s": round(span, 3),
        "ticks": _ticks(span, scale),
        "lane_height": LANE_HEIGHT,
        "label_width": LABEL_WIDTH,
    }


def _ticks(span: float, scale: float) -> list[tuple[float, str]]:
    """About eight round time marks across the axis."""
    step = next(
        (
            s
            for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
            if span / s <= 8
        ),
        7200,
    )
    marks, moment = [], 0.0
    while moment <= span + 1e-9:
        marks.append((round(LABEL_WIDTH + moment * scale, 2), _clock(moment)))
        moment += step
    return marks


def _clock(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _bars(
    result: Mapping[str, Any], part: int | None, job: Mapping[str, Any], start: str
) -> list[Bar]:
    """The job's span (from when a worker took it: lock waits and retry waits included)
    and one bar per attempt, coloured by how the attempt ended."""
    name = result["name"]
    parts = len(result.get("parts") or [])
    label = f"{name} part {part}/{parts}" if part is not None else name
    log = job["attempt_log"]
    slot = job["slot"]
    bars = []
    job_start = (
        result["started_at"] if part is None and result["started_at"] else log[0]["started_at"]
    )
    job_end = log[-1]["finished_at"] or summary_end(result)
    bars.append(
        Bar(
            "job",
            name,
            part,
            None,
            slot,
            seconds_between(start, job_start),
            seconds_between(start, job_end),
            job["status"],
            f"{label}: {job['status']}, {len(log)} attempt(s), "
            f"{seconds_text(seconds_between(job_start, job_end))}",
        )
    )
    for entry in log:
        finished = entry["finished_at"] or job_end
        took = seconds_between(entry["started_at"], finished)
        last = entry is log[-1]
        status = job["status"] if last else ("success" if entry["exit_code"] == 0 else "retried")
        code = entry["exit_code"]
        size = entry["bytes_transferred"]
        rate = _rate(size, took)
        lines = [
            f"{label}, attempt {entry['attempt']}/{len(log)}: {status}",
            f"{seconds_text(took)}, {human_bytes(size) if size is not None else '? bytes'}"
            + (f" at {human_bytes(rate)}/s" if rate is not None else ""),
            f"exit {code}: {exit_meaning(code)}" if code is not None else "no exit code",
        ]
        bars.append(
            Bar(
                "attempt",
                name,
                part,
                entry["attempt"],
                slot,
                seconds_between(start, entry["started_at"]),
                seconds_between(start, finished),
                status,
                "\n".join(lines),
            )
        )
    return bars


def summary_end(result: Mapping[str, Any]) -> str:
    """When a job whose last attempt has no end (a worker that died) ended for the run."""
    return result["finished_at"] or result["started_at"]


# -- throughput charts --------------------------------------------------------------------


def _charts(summary: Mapping[str, Any], trace: RunTrace, span: float) -> list[dict[str, Any]]:
    """One chart per target with progress samples, on the timeline's time axis: bytes per
    second between successive samples of each of its jobs (a split target's parts
    overlaid as separate series), as steps; each attempt's start counts as 0 bytes."""
    if not trace.samples:
        return []
    start = parse_utc(summary["started_at"]).timestamp()
    scale = TIMELINE_WIDTH / max(span, 0.001)
    charts = []
    for result in summary["results"]:
        series = []
        for part, job in _jobs(result) or [(None, result)]:
            key = (
                result["name"]
                if part is None
                else f"{result['name']} {part}/{len(result['parts'])}"
            )
            starts = [
                parse_utc(entry["started_at"]).timestamp() for entry in job.get("attempt_log") or []
            ]
            samples = trace.samples.get(key)
            if not samples:  # no redraw: nothing to say about its rate
                continue
            steps = _steps(sorted([*samples, *((t, 0) for t in starts)]))
            if steps:
                series.append((key, steps))
        peak = max((rate for _, steps in series for _, _, rate in steps), default=0.0)
        if peak <= 0:
            continue
        bars = [
            {
                "key": key,
                "x": round(LABEL_WIDTH + (t0 - start) * scale, 2),
                "width": round(max((t1 - t0) * scale, 0.5), 2),
                "height": round(rate / peak * (CHART_HEIGHT - 6), 2),
                "title": f"{key}: {human_bytes(rate)}/s",
            }
            for key, steps in series
            for t0, t1, rate in steps
        ]
        charts.append(
            {
                "name": result["name"],
                "peak": human_bytes(peak) + "/s",
                "bars": bars,
                "width": LABEL_WIDTH + TIMELINE_WIDTH + 10,
                "height": CHART_HEIGHT,
                "left": LABEL_WIDTH,
                "plot_width": TIMELINE_WIDTH,
            }
        )
    return charts


def _steps(samples: Sequence[tuple[float, int]]) -> list[tuple[float, float, float]]:
    """(from, to, bytes/s) between successive samples, at most MAX_STEPS of them (merged
    evenly past that); a drop in bytes is a new attempt, not a negative rate."""
    steps = []
    for (t0, b0), (t1, b1) in itertools.pairwise(samples):
        if t1 > t0 and b1 >= b0:
            steps.append((t0, t1, b1 - b0))
    if len(steps) > MAX_STEPS:
        size = -(-len(steps) // MAX_STEPS)
        steps = [
            (group[0][0], group[-1][1], sum(moved for _, _, moved in group))
            for group in (steps[i : i + size] for i in range(0, len(steps), size))
        ]
    return [(t0, t1, moved / (t1 - t0)) for t0, t1, moved in steps if t1 > t0]
