"""Which job starts next, and what a failure or a cancel means for the others.

Pure bookkeeping: no processes, no clock, no queue. The run loop (pdbsync.runner) asks
:meth:`Scheduler.to_start` for the jobs to hand to the pool and tells it when a job
finished or the run is cancelled; the scheduler answers which waiting jobs will never
start and why. Everything that decides *order* or *whether* lives here, so it can be
tested without starting anything (tests/test_scheduler.py), and so later rules
(deadlines, shards, split parts) have one place to go.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from pdbsync.jobs import Job


class RunState(Enum):
    """Where a run stands; one value instead of several flags that must agree."""

    RUNNING = "running"  # jobs start as slots free up
    DRAINING = "draining"  # --fail-fast: nothing new starts, running jobs finish
    STOPPING = "stopping"  # a cancel, or --fail-fast=kill: running jobs are being stopped


#: Why a waiting job never starts after a failure with --fail-fast.
FAIL_FAST_REASON = "not started: an earlier target failed (--fail-fast)"
#: Why running jobs are stopped by --fail-fast=kill.
FAIL_FAST_KILL_CAUSE = "stopped after another target failed (--fail-fast=kill)"


@dataclass(frozen=True)
class NotStarted:
    """A job that will never start: its final status and the reason a reader sees."""

    job: Job
    status: str  # "cancelled" or "skipped"
    reason: str


@dataclass
class Scheduler:
    """Hands out jobs in order, at most ``slots`` at a time, and applies fail-fast and
    cancellation.

    ``fail_fast``: None, ``"wait"`` (after a failure start nothing new) or ``"kill"``
    (also stop the running jobs).
    """

    jobs: Sequence[Job]
    slots: int
    fail_fast: str | None = None
    state: RunState = RunState.RUNNING
    #: why running jobs are being stopped (STOPPING), in words for the summary
    stop_cause: str | None = None
    running: set[str] = field(default_factory=set)
    cancelled: bool = False
    _waiting: deque[Job] = field(init=False)
    _not_started: tuple[str, str] | None = field(default=None, init=False)  # status, reason

    def __post_init__(self) -> None:
        self._waiting = deque(self.jobs)

    @property
    def done(self) -> bool:
        """Nothing waits and nothing runs."""
        return not self._waiting and not self.running

    def to_start(self) -> list[Job]:
        """The jobs to start now (each counts as running from here on)."""
        started = []
        while self.state is RunState.RUNNING and self._waiting and len(self.running) < self.slots:
            job = self._waiting.popleft()
            self.running.add(job.name)
            started.append(job)
        return started

    def not_started(self) -> list[NotStarted]:
        """Once the run stopped starting jobs: every waiting job, with why it never ran."""
        if self._not_started is None:
            return []
        status, reason = self._not_started
        gone = [NotStarted(job, status, reason) for job in self._waiting]
        self._waiting.clear()
        return gone

    def finished(self, name: str, status: str) -> bool:
        """Job ``name`` ended with ``status``; True if the running jobs must now be stopped."""
        self.running.discard(name)
        if status != "failed" or not self.fail_fast or self.state is not RunState.RUNNING:
            return False
        self._not_started = ("skipped", FAIL_FAST_REASON)
        if self.fail_fast == "kill":
            self.state, self.stop_cause = RunState.STOPPING, FAIL_FAST_KILL_CAUSE
            return True
        self.state = RunState.DRAINING
        return False

    def cancel(self, cause: str) -> bool:
        """Cancel the run (``cause``: e.g. ``cancelled by SIGTERM``); True the first time,
        when the running jobs must be stopped. A cancel outranks a fail-fast stop."""
        if self.cancelled:
            return False
        self.cancelled = True
        self.state, self.stop_cause = RunState.STOPPING, cause
        self._not_started = ("cancelled", f"{cause} before it started")
        return True
