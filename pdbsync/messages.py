"""What a worker tells the collector, one small type per kind of message.

They travel over the run's ``multiprocessing.Queue`` (pickled), in order per worker:
``WorkerStarted``, then ``EventBatch``/``RsyncStarted`` as the job runs, then
``JobFinished`` last, so a target's lines always precede its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
class EventBatch:
    """Events (already in their JSON shape) to render in this order."""

    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class JobFinished:
    """The job's result (``SyncResult.to_dict()``): its last message."""

    name: str
    result: dict[str, Any]


Message = WorkerStarted | RsyncStarted | EventBatch | JobFinished
