"""What a worker tells the collector, one small type per kind of message.

They travel over the run's ``multiprocessing.Queue`` (pickled), in order per worker:
``WorkerStarted``, then ``EventBatch``/``RsyncStarted`` as the job runs, then
``JobFinished`` last, so a target's lines always precede its result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pdbsync.contracts import SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class WorkerStarted:
    """A worker took job ``name``; ``pid`` is the worker process (to stop or watch it)."""

    name: str
    pid: int


@dataclass(frozen=True, slots=True)
class RsyncStarted:
    """Job ``name`` runs rsync as process (and process group) ``pid``; None once it ended."""

    name: str
    pid: int | None


@dataclass(frozen=True, slots=True)
class OutputLines:
    """Consecutive lines one stream of a job printed: ``output`` events, compactly.

    A verbose rsync prints a line per file, tens of thousands a minute. As one dict
    each they cost the worker, the queue and the renderer more CPU than rsync spends
    printing them (issue 10), so a worker sends them as a list of strings, and a sink
    that knows this type (a renderer, ``--events``) handles the list at once. Every
    other sink gets :meth:`events`: the very events these lines stand for.
    """

    name: str
    ts: str  # read once per chunk of output: the lines arrived together
    stream: str  # stdout | stderr
    lines: list[str]
    marks: dict[str, int] | None = None  # a split target's part: {"part": 2, "parts": 4}

    @property
    def key(self) -> str:
        """The job the lines belong to (``mmcif``, or a part: ``mmcif 2/4``), which is
        also what a text line's ``[...]`` prefix shows."""
        if self.marks is None:
            return self.name
        return f"{self.name} {self.marks['part']}/{self.marks['parts']}"

    def event(self, line: str) -> dict[str, Any]:
        """The ``output`` event of one line (key order as :func:`pdbsync.events.make_event`)."""
        event = {
            "v": SCHEMA_VERSION,
            "ts": self.ts,
            "type": "output",
            "name": self.name,
            "message": line,
            "stream": self.stream,
            "line": line,
        }
        if self.marks is not None:
            event.update(self.marks)
        return event

    def events(self) -> list[dict[str, Any]]:
        return [self.event(line) for line in self.lines]


def lines_sink(sink: Callable[[dict[str, Any]], None]) -> Callable[[OutputLines], None]:
    """How event sink ``sink`` takes a run of output lines: at once by its
    ``output_lines`` if its class defines one (a renderer, ``--events``), else one event
    at a time, like any other callable (a mock or a proxy that answers every attribute
    included)."""
    if getattr(type(sink), "output_lines", None) is not None:
        return sink.output_lines  # type: ignore[attr-defined]

    def each_event(lines: OutputLines) -> None:
        for line in lines.lines:
            sink(lines.event(line))

    return each_event


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events to render in this order: dicts already in their JSON shape, and runs of
    output lines (:class:`OutputLines`)."""

    events: list[dict[str, Any] | OutputLines]

    def expanded(self) -> list[dict[str, Any]]:
        """Every event as a dict (output lines one by one)."""
        out: list[dict[str, Any]] = []
        for item in self.events:
            if isinstance(item, OutputLines):
                out += item.events()
            else:
                out.append(item)
        return out


@dataclass(frozen=True, slots=True)
class JobFinished:
    """The job's result (``SyncResult.to_dict()``): its last message."""

    name: str
    result: dict[str, Any]


Message = WorkerStarted | RsyncStarted | EventBatch | JobFinished
