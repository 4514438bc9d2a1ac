"""Turning events into what stdout shows: ``[name] line`` text, or JSON lines.

Renderers write bytes into a buffer they own and write it out on ``flush()``, which the
collector calls once per burst of queue messages. That keeps a verbose rsync from
costing one write system call per line (``PYTHONUNBUFFERED=1`` is common in containers
and would otherwise do exactly that), while output still appears within a poll interval.
A closed stdout (``pdb-sync ... | head``) silences the renderer; the run goes on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from pdbsync.report.throttle import Throttle
from pdbsync.rsync.output import STATS_INITIALS, StatsBlock, is_final_redraw
from pdbsync.units import human_bytes, human_rate, seconds_text, time_text

if TYPE_CHECKING:
    from pdbsync.messages import OutputLines

#: On a file or pipe, at most one progress line per target per this many seconds.
FILE_PROGRESS_SECONDS = 5.0
#: Without a live line (a terminal we may not redraw), one progress line per this long.
TTY_PROGRESS_SECONDS = 0.5
#: Width of the live line when the terminal does not say.
DEFAULT_COLUMNS = 80
#: The bytes a text line may hold as they are: printable ASCII, and the line end.
_PLAIN_ASCII = bytes(range(0x20, 0x7F)) + b"\n"


class Renderer:
    """Buffered, broken-pipe-safe output shared by both formats."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.buffer: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.buffer.append(data)

    def flush(self) -> None:
        if not self.buffer:
            return
        data = b"".join(self.buffer)
        self.buffer = []
        self._send(data)

    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.out.write(data)
            self.out.flush()
        except BrokenPipeError:
            self._stdout_gone()
        except ValueError:  # the stream was closed under us
            self.closed = True

    def _stdout_gone(self) -> None:
        """The reader went away: stop writing, and keep Python's exit flush from failing."""
        self.closed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def event(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def __call__(self, event: dict[str, Any]) -> None:
        """A renderer is an event sink (``on_event``) with a ``flush()``."""
        self.event(event)

    def output_lines(self, lines: OutputLines) -> None:
        """A run of ``output`` events at once (see pdbsync.run.collector.Collector)."""
        for line in lines.lines:
            self.event(lines.event(line))

    def summary(self, summary: dict[str, Any]) -> None:
        raise NotImplementedError

    def plan_summary(self, plan: dict[str, Any]) -> None:
        raise NotImplementedError


class Relay(Renderer):
    """A renderer in front of another: every call is passed on unchanged, so a subclass
    only overrides what it looks at on the way (``event``, ``output_lines``) and
    ``tails``. Put in place only when a flag asks for what it keeps."""

    def __init__(self, inner: Renderer) -> None:
        super().__init__(inner.out)
        self.inner = inner

    def event(self, event: dict[str, Any]) -> None:
        self.inner.event(event)

    def __call__(self, event: dict[str, Any]) -> None:
        self.event(event)  # an event sink for pdbsync.run.driver

    def output_lines(self, lines: OutputLines) -> None:
        self.inner.output_lines(lines)

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()

    def summary(self, summary: dict[str, Any]) -> None:
        self.inner.summary(summary)

    def plan_summary(self, plan: dict[str, Any]) -> None:
        self.inner.plan_summary(plan)

    def tails(self) -> dict[str, list[str]]:
        """Each target's last stderr lines, where a relay in the chain keeps them."""
        tails = getattr(self.inner, "tails", None)
        return tails() if tails is not None else {}


class JsonRenderer(Renderer):
    """One JSON object per line, stdout carries nothing else."""

    def event(self, event: dict[str, Any]) -> None:
        self.write(orjson.dumps(event) + b"\n")

    def output_lines(self, lines: OutputLines) -> None:
        self.write(json_lines(lines))

    def summary(self, summary: dict[str, Any]) -> None:
        """Nothing extra: the ``run_finished`` event already carries the summary."""

    def plan_summary(self, plan: dict[str, Any]) -> None:
        """Nothing extra: the ``plan_finished`` event already carries the plan."""


class TextRenderer(Renderer):
    """``[name] message`` lines, progress throttled or live, and a summary block at the end.

    On a terminal (``live``), progress never scrolls: one status line at the bottom shows
    every running target's latest progress and is redrawn in place with ``\\r``, padded
    with spaces to erase what was there, so it needs no escape codes at all; ordinary
    lines are written over it and it is redrawn below them. Anywhere else progress
    becomes plain ``[name] 45% 10.2MB/s eta 0:01:23 ...`` lines, at most one per target
    every :data:`FILE_PROGRESS_SECONDS`, and no ``\\r`` or escape code is ever written.
    Colour (only for loud warnings) needs ``color``: a terminal and no ``NO_COLOR``.

    rsync's closing ``--stats`` block (which pdb-sync asks for to fill the summary, and
    which the ``Completed`` line already sums up) is shown only with ``show_stats``; see
    :class:`_StatsHider`.
    """

    def __init__(
        self,
        out: BinaryIO,
        isatty: bool,
        color: bool = False,
        columns: int = DEFAULT_COLUMNS,
        live: bool | None = None,
        show_stats: bool = False,
    ) -> None:
        super().__init__(out)
        self.stats = None if show_stats else _StatsHider(self._line)
        self.color = color and isatty
        self.live = isatty if live is None else live
        self.columns = max(columns, 20)
        self.planned: set[str] = set()
        self.progress_seconds = TTY_PROGRESS_SECONDS if isatty else FILE_PROGRESS_SECONDS
        self.redraws: dict[str, Throttle[dict[str, Any]]] = {}  # per target
        self.status: dict[str, str] = {}  # running target -> its latest progress, for live
        self.drawn = 0  # length of the live line now on screen (0: none)
        self.status_changed = False

    def event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        name = label(event)  # the target, or one part of it: "mmcif 2/4"
        if kind == "part_finished":
            kind = "sync_finished"  # for its part's lines, a part's end is the end
        if self.stats is not None and self.stats.take(kind, name, event):
            return
        if kind == "progress":
            self._progress(name, event)
            return
        if self.live and kind == "sync_finished" and self.status.pop(name, None) is not None:
            self.status_changed = True  # its part of the live line goes with it
        if self._release_final(kind, name):
            self._line(event)
        elif kind == "plan":
            self.planned.add(name)
            self.write(plan_block(event, self.color).encode("utf-8", "replace"))
        elif not self._said_elsewhere(kind, name):
            self._line(event)

    def _progress(self, name: str, event: dict[str, Any]) -> None:
        """A progress redraw: into the live line on a terminal, else a throttled line."""
        if self.live:
            # The live line shows the check of a big unchanged tree too ("0 B, 12000/250000
            # to check"): it is redrawn in place, never left behind as a line.
            self.status[name] = f"[{name}] {short_progress(event)}"
            self.status_changed = True
            return
        if event.get("bytes") == 0 and not event.get("files_transferred"):
            return  # "0% 0.00kB/s (0 B)": nothing transferred yet, no line to print
        throttle = self.redraws.get(name)
        if throttle is None:
            throttle = self.redraws[name] = Throttle(self.progress_seconds)
        if throttle.offer(event) is not None:
            self._line(event)

    def _release_final(self, kind: str, name: str | None) -> bool:
        """Write the redraw the throttle holds for ``name`` when its moment has come: at
        the transfer's end, or before any line that follows its final state (100%, or
        nothing left to check), so the lines stay in order. True if one was written."""
        throttle = self.redraws.get(name) if name is not None else None
        if throttle is None or throttle.held is None:
            return False
        if kind != "sync_finished" and not is_final_redraw(throttle.held):
            return False
        self._line(throttle.release())  # the transfer's final state, in order
        return True

    def _said_elsewhere(self, kind: str, name: str | None) -> bool:
        """Events that need no line of their own: the run's end (the summary block says
        it) and a planned target's end (its plan block said it)."""
        if kind in ("run_finished", "plan_finished"):
            return True
        return kind == "sync_finished" and name in self.planned

    def output_lines(self, lines: OutputLines) -> None:
        """Write a run of output lines at once: the same text :meth:`event` would write
        for each, without building an event per line.

        Per line that means: a held final progress redraw goes first (only the first
        line can find one), and with the stats block hidden, stdout lines that could
        belong to it (:class:`_StatsHider`) take the event path; any other line releases
        what the hider holds, as :meth:`_StatsHider.output` does.
        """
        name = lines.key
        hider = self.stats if lines.stream == "stdout" else None
        if hider is None:
            throttle = self.redraws.get(name)
            if throttle is not None and lines.lines and _is_final_held(throttle):
                self._line(throttle.release())
            self._lines(name, lines.lines)
            return
        plain: list[str] = []
        for line in lines.lines:
            if line[:1] not in STATS_INITIALS and line.strip():
                plain.append(line)
                continue
            if plain:
                hider.plain(name, plain[0])
                self._lines(name, plain)
                plain = []
            hider.output(lines.event(line))
        if plain:
            hider.plain(name, plain[0])
            self._lines(name, plain)

    def _lines(self, name: str, lines: list[str]) -> None:
        """``[name] line`` for each of ``lines``, encoded at once."""
        if not lines:
            return
        prefix = f"[{name}] "
        data = (prefix + f"\n{prefix}".join(lines) + "\n").encode("utf-8", "replace")
        # Printable ASCII and line ends only: nothing to escape. One pass in C over the
        # bytes, cheaper than str.isprintable on every line, which only other text needs.
        if data.translate(None, _PLAIN_ASCII) and not all(map(str.isprintable, lines)):
            escaped = map(visible, lines)
            data = (prefix + f"\n{prefix}".join(escaped) + "\n").encode("utf-8", "replace")
        self.write(data)

    def _line(self, event: dict[str, Any]) -> None:
        name = label(event)
        message = visible(event["message"])
        text = f"[{name}] {message}\n" if name else f"{message}\n"
        self.write(text.encode("utf-8", "replace"))

    def flush(self) -> None:
        if not self.live:
            super().flush()
            return
        if not self.buffer and not self.status_changed:
            return
        parts = []
        if self.drawn:  # erase the live line: back to column 0, blank it, back again
            parts.append(b"\r" + b" " * self.drawn + b"\r")
        parts += self.buffer
        line = live_line(list(self.status.values()), self.columns - 1)
        parts.append(line.encode("utf-8", "replace"))
        self.drawn = len(line)
        self.buffer = []
        self.status_changed = False
        self._send(b"".join(parts))

    def summary(self, summary: dict[str, Any]) -> None:
        self.write(summary_block(summary).encode("utf-8", "replace"))

    def plan_summary(self, plan: dict[str, Any]) -> None:
        self.write(plan_table(plan, self.color).encode("utf-8", "replace"))


def label(event: dict[str, Any]) -> str | None:
    """What goes in an event's ``[...]`` prefix: the target, and for the events of one
    part of a split target, which part (``mmcif 2/4``)."""
    name = event.get("name")
    if name is not None and "part" in event:
        return f"{name} {event['part']}/{event['parts']}"
    return name


def visible(text: str) -> str:
    """``text`` with every character a terminal would not simply show written as an
    escape (``\\x1b``, ``\\u202e``, ``\\U000e0001``).

    Text mode prints what others wrote (rsync's lines with the mirror's file names, a
    daemon's motd, error messages): a control character there can move the cursor or
    clear the screen, and a bidi control (U+202E RIGHT-TO-LEFT OVERRIDE makes
    ``evil\\u202egpj.cif`` read as ``evilfic.jpg``) or an invisible format character
    can make a line say something else. Escaped is whatever ``str.isprintable`` refuses:
    controls (C0, C1, DEL), format characters (Cf: bidi controls, zero-width ones),
    separators other than the space, unassigned and private-use code points. JSON keeps
    the characters: its consumers get them escaped by the encoding, and exact.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def short_progress(event: dict[str, Any]) -> str:
    """``45% 10.20MB/s eta 0:01:23``: one target's part of the live line."""
    return f"{event['percent']}% {event['rate']} {time_text(event)}"


class _StatsHider:
    """Holds back each target's stdout lines that may be rsync's closing ``--stats``
    block, and drops them once the target's result shows they were.

    A block counts as rsync's own only if nothing but blank lines follows it before the
    target ends (:class:`pdbsync.rsync.output.StatsBlock`'s rule): a daemon's motd can read like
    statistics, and it must still be shown. So candidate lines (and the blank lines
    around them) wait; any other stdout line releases them in order, and at
    ``sync_finished`` they are dropped when the result has ``stats`` (rsync printed its
    block) and shown otherwise.
    """

    def __init__(self, show: Any) -> None:
        self.show = show  # writes one event as a "[name] line"
        self.blocks: dict[str, StatsBlock] = {}
        self.held: dict[str, list[dict[str, Any]]] = {}
        self.in_block: dict[str, bool] = {}

    def take(self, kind: str, name: str | None, event: dict[str, Any]) -> bool:
        """Watch one event for its bearing on the held lines; True when the event is a
        stdout line, which is the hider's to show or hold (``kind``: the event's type,
        ``part_finished`` read as ``sync_finished``)."""
        if kind == "output" and event.get("stream") == "stdout":
            self.output(event)
            return True
        if kind == "sync_finished":
            self.finished(event)
        elif kind == "progress" and name is not None:
            self.more_output(name)  # a redraw is stdout too: held lines go first
        return False

    def output(self, event: dict[str, Any]) -> None:
        name = label(event)
        line = event["line"]
        block = self.blocks.get(name)
        if block is None:
            block = self.blocks[name] = StatsBlock()
        held = self.held.setdefault(name, [])
        if block.feed(line):
            if line.startswith("Number of files: ") and self.in_block.get(name):
                self._release(name)  # a new block: the one held was not the last
                held = self.held[name]
            held.append(event)
            self.in_block[name] = True
        elif not line.strip():
            held.append(event)  # blank lines frame the block; they wait with it
        else:
            self._release(name)
            self.show(event)

    def plain(self, name: str, line: str) -> None:
        """Before a stdout ``line`` that cannot belong to a stats block is shown (without
        :meth:`output`): what that method does with such a line, short of showing it."""
        block = self.blocks.get(name)
        if block is not None:
            block.feed(line)  # closes an open block: output followed it
        self._release(name)

    def more_output(self, name: str) -> None:
        """rsync wrote something else to stdout: what is held was not its closing block."""
        if self.held.get(name):
            self._release(name)

    def _release(self, name: str) -> None:
        for event in self.held.pop(name, []):
            self.show(event)
        self.held[name] = []
        self.in_block[name] = False

    def finished(self, event: dict[str, Any]) -> None:
        name = label(event)
        if self.in_block.get(name) and (event.get("result") or {}).get("stats"):
            self.held[name] = []  # rsync's closing block: the Completed line says it
        self._release(name)
        self.blocks.pop(name, None)
        self.held.pop(name, None)
        self.in_block.pop(name, None)


def live_line(parts: list[str], width: int) -> str:
    """The running targets' progress joined into one line that fits ``width`` columns.

    Cut to the width because a line that wraps cannot be redrawn with ``\\r``.
    """
    line = " | ".join(parts)
    if len(line) > width:
        line = line[: max(width - 3, 0)] + "..."
    return line


def json_lines(lines: OutputLines) -> bytes:
    """The JSON lines of a run of output events: what ``orjson.dumps`` makes of each
    :meth:`~pdbsync.messages.OutputLines.event`, without building the events.

    Only the line is encoded per line (once, used for ``message`` and ``line``); the
    rest of the event is the same for the whole run and is cut from one encoded event.
    """
    if not lines.lines:
        return b""
    probe = orjson.dumps(lines.event(""))  # ..."message":"","stream":"S","line":""...}
    message = probe.index(b'"message":""') + len(b'"message":')
    line = probe.index(b'"line":""', message) + len(b'"line":')
    head, middle, tail = probe[:message], probe[message + 2 : line], probe[line + 2 :] + b"\n"
    dumps = orjson.dumps
    return b"".join([head + text + middle + text + tail for text in map(dumps, lines.lines)])


def _is_final_held(throttle: Throttle[dict[str, Any]]) -> bool:
    return throttle.held is not None and is_final_redraw(throttle.held)


def summary_block(summary: dict[str, Any]) -> str:
    """The human summary printed at the end of a text-mode run."""
    totals = summary["totals"]
    counts = f"Total: {totals['total']} | Success: {totals['succeeded']} | "
    counts += f"Failed: {totals['failed']}"
    for key, label in (("cancelled", "Cancelled"), ("skipped", "Skipped")):
        if totals[key]:
            counts += f" | {label}: {totals[key]}"
    lines = ["", "=== Sync Summary ===", counts]
    seconds = summary["timings"]["total_s"]
    received = sum(r["stats"].get("bytes_received", 0) for r in summary["results"])
    lines.append(
        f"Transferred: {totals['files_transferred']:,} files, "
        f"{human_bytes(totals['bytes_transferred'])} at "
        f"{human_rate(totals['bytes_transferred'], seconds)} "
        f"({human_bytes(received)} received over the network)"
    )
    lines.append(f"Created: {totals['files_created']:,} | Deleted: {totals['files_deleted']:,}")
    unsuccessful = [r for r in summary["results"] if r["status"] != "success"]
    if unsuccessful:
        lines.append(
            "Not successful:" if any(r["status"] != "failed" for r in unsuccessful) else "Failed:"
        )
        for result in unsuccessful:
            if result["status"] == "failed":
                code = result["exit_code"]
                what = (
                    f"exit {code} ({result['exit_meaning']})"
                    if code is not None
                    else visible(result["error"] or "failed")
                )
                error = result["error"]
                detail = f": {visible(error)}" if code is not None and error else ""
                took = seconds_text(result["duration_s"])
                lines.append(f"  {result['name']}: {what} after {took}{detail}")
            else:
                lines.append(f"  {result['name']}: {result['status']}")
    elif totals["total"]:
        lines.append("All syncs completed successfully.")
    if summary.get("interrupted"):
        lines.append(f"Interrupted by {summary['interrupted']}.")
    timings = summary["timings"]
    lines.append(
        f"Total time: {seconds_text(timings['total_s'], 2)} | "
        f"Average: {seconds_text(timings['average_s'], 2)}"
    )
    return "\n".join(lines) + "\n"


def _loud(text: str, color: bool) -> str:
    """Bold red on a colour terminal; plain text anywhere else (NO_COLOR, files, pipes)."""
    return f"\x1b[1;31m{text}\x1b[0m" if color else text


def plan_block(event: dict[str, Any], color: bool = False) -> str:
    """A target's plan as a few ``[name]`` lines, deletions flagged loudly."""
    name = event["name"]
    files = event["files_total"]
    source = f"{files:,} files" if files is not None else "? files"
    if event["delete_enabled"]:
        delete = f"{event['to_delete']:,}"
    else:
        delete = "off (the target's rsync flags do not delete)"
    lines = [
        "Plan (dry run, nothing changed):",
        f"  source:    {source}, {human_bytes(event['total_size'])}",
        f"  create:    {event['to_create']:,}",
        f"  update:    {event['to_update']:,}",
        f"  delete:    {delete}",
        f"  transfer:  {human_bytes(event['bytes_to_transfer'])}",
    ]
    if event["to_delete"]:
        lines.append(_loud(f"WILL DELETE {event['to_delete']:,} files", color))
        lines += [f"  e.g. {visible(path)}" for path in event["deletion_sample"][:5]]
    return "".join(f"[{name}] {line}\n" for line in lines)


def plan_table(plan: dict[str, Any], color: bool = False) -> str:
    """The totals table printed at the end of a text-mode ``--plan``."""
    header = ("target", "files", "size", "create", "update", "delete", "transfer")
    rows = []
    for target in plan["targets"]:
        if target["files_total"] is None:
            rows.append((target["name"], target["status"].upper(), "", "", "", "", ""))
            continue
        rows.append(_plan_row(target["name"], target))
    deleting = any(target["delete_enabled"] for target in plan["targets"])
    rows.append(_plan_row("TOTAL", {**plan["totals"], "delete_enabled": deleting}))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [f"{row[0]:<{widths[0]}}"]
        cells += [f"{cell:>{width}}" for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    totals = plan["totals"]
    lines = ["", "=== Plan Summary (dry run: nothing was changed) ===", fmt(header)]
    lines += [fmt(row) for row in rows]
    counts = f"Targets: {totals['targets']} | Planned: {totals['planned']}"
    for key in ("failed", "cancelled", "skipped"):
        if totals[key] or key == "failed":
            counts += f" | {key.capitalize()}: {totals[key]}"
    lines.append(counts)
    if totals["to_delete"]:
        names = ", ".join(totals["targets_deleting"])
        lines.append(_loud(f"WILL DELETE {totals['to_delete']:,} files ({names})", color))
    if plan.get("interrupted"):
        lines.append(f"Interrupted by {plan['interrupted']}.")
    lines.append(f"Total time: {plan['timings']['total_s']:.2f}s")
    return "\n".join(lines) + "\n"


def _plan_row(name: str, numbers: dict[str, Any]) -> tuple[str, ...]:
    delete = f"{numbers['to_delete']:,}" if numbers["delete_enabled"] else "off"
    return (
        name,
        f"{numbers['files_total']:,}",
        human_bytes(numbers["total_size"]),
        f"{numbers['to_create']:,}",
        f"{numbers['to_update']:,}",
        delete,
        human_bytes(numbers["bytes_to_transfer"]),
    )
