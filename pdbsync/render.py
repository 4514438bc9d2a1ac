"""Turning events into what stdout shows: ``[name] line`` text, or JSON lines.

Renderers write bytes into a buffer they own and write it out on ``flush()``, which the
collector calls once per burst of queue messages. That keeps a verbose rsync from
costing one write system call per line (``PYTHONUNBUFFERED=1`` is common in containers
and would otherwise do exactly that), while output still appears within a poll interval.
A closed stdout (``pdb-sync ... | head``) silences the renderer; the run goes on.
"""

from __future__ import annotations

import os
import time
from typing import Any, BinaryIO

import orjson

from pdbsync.units import human_bytes, human_rate

#: On a file or pipe, at most one progress line per target per this many seconds.
FILE_PROGRESS_SECONDS = 5.0
#: On a terminal, at most one progress line per target per this many seconds.
TTY_PROGRESS_SECONDS = 0.5


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

    def summary(self, summary: dict[str, Any]) -> None:
        raise NotImplementedError


class JsonRenderer(Renderer):
    """One JSON object per line, stdout carries nothing else."""

    def event(self, event: dict[str, Any]) -> None:
        self.write(orjson.dumps(event) + b"\n")

    def summary(self, summary: dict[str, Any]) -> None:
        """Nothing extra: the ``run_finished`` event already carries the summary."""


class TextRenderer(Renderer):
    """``[name] message`` lines, progress throttled, and the summary block at the end."""

    def __init__(self, out: BinaryIO, isatty: bool) -> None:
        super().__init__(out)
        self.progress_seconds = TTY_PROGRESS_SECONDS if isatty else FILE_PROGRESS_SECONDS
        self.last_progress: dict[str, float] = {}
        self.held_progress: dict[str, dict[str, Any]] = {}

    def event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        name = event.get("name")
        if kind == "progress":
            now = time.monotonic()
            if now - self.last_progress.get(name, -1e9) < self.progress_seconds:
                self.held_progress[name] = event
                return
            self.last_progress[name] = now
            self.held_progress.pop(name, None)
        elif name in self.held_progress and (
            kind == "sync_finished" or _is_final(self.held_progress[name])
        ):
            self._line(self.held_progress.pop(name))  # the transfer's final state, in order
        elif kind == "run_finished":
            return  # the summary block says it
        self._line(event)

    def _line(self, event: dict[str, Any]) -> None:
        name = event.get("name")
        text = f"[{name}] {event['message']}\n" if name else f"{event['message']}\n"
        self.write(text.encode("utf-8", "replace"))

    def summary(self, summary: dict[str, Any]) -> None:
        self.write(summary_block(summary).encode("utf-8", "replace"))


def _is_final(progress: dict[str, Any]) -> bool:
    """rsync's last redraw of a transfer: nothing left to check."""
    return progress.get("files_to_check") == 0 or progress.get("percent") == 100


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
                    else (result["error"] or "failed")
                )
                detail = f": {result['error']}" if code is not None and result["error"] else ""
                lines.append(
                    f"  {result['name']}: {what} after {result['duration_s']:.1f}s{detail}"
                )
            else:
                lines.append(f"  {result['name']}: {result['status']}")
    elif totals["total"]:
        lines.append("All syncs completed successfully.")
    if summary.get("interrupted"):
        lines.append(f"Interrupted by {summary['interrupted']}.")
    timings = summary["timings"]
    lines.append(f"Total time: {timings['total_s']:.2f}s | Average: {timings['average_s']:.2f}s")
    return "\n".join(lines) + "\n"
