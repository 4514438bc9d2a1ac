"""Which job starts next, and what a failure or a cancel means for the others.

Pure bookkeeping: no processes, no clock, no queue. The collector (pdbsync.run.collector) asks
:meth:`Scheduler.to_start` for the jobs to hand to the pool and tells it when a job
finished or the run is cancelled; the scheduler answers which waiting jobs will never
start and why. Everything that decides *order* or *whether* lives here, so it can be
tested without starting anything (tests/test_scheduler.py), and so later rules
(deadlines, shards, split parts) have one place to go.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from pdbsync.rsync.hosts import host_of
from pdbsync.run.deadline import Deadline
from pdbsync.run.jobs import Job


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
    #: --deadline: a job not expected to finish before it never starts, and running jobs
    #: are stopped a margin before it (see :meth:`tick`)
    deadline: Deadline | None = None
    #: Unix time as the collector last told it (:meth:`tick`); the deadline rule's clock
    now: float = 0.0
    #: at most this many running jobs per mirror host (pdbsync.rsync.hosts; None: no cap)
    max_per_host: int | None = None
    _waiting: deque[Job] = field(init=False)
    _hosts: dict[str, str] = field(default_factory=dict, init=False)  # running key -> host
    _refused: list[NotStarted] = field(default_factory=list, init=False)
    _not_started: tuple[str, str] | None = field(default=None, init=False)  # status, reason

    def __post_init__(self) -> None:
        self._waiting = deque(longest_first(self.jobs))

    @property
    def done(self) -> bool:
        """Nothing waits and nothing runs."""
        return not self._waiting and not self.running and not self._refused

    def to_start(self) -> list[Job]:
        """The jobs to start now (each counts as running from here on)."""
        started = []
        while self.state is RunState.RUNNING and self._waiting and len(self.running) < self.slots:
            job = self._next_within_host_cap()
            if job is None:
                break  # every waiting job's host is at its cap: they wait for a slot there
            if self._refused_by_deadline(job):
                continue
            self.running.add(job.key)
            self._hosts[job.key] = host_of(job.url)
            started.append(job)
        return started

    def _next_within_host_cap(self) -> Job | None:
        """The first waiting job (longest first) whose host has a free connection."""
        if self.max_per_host is None:
            return self._waiting.popleft()
        busy = Counter(self._hosts.values())
        for index, job in enumerate(self._waiting):
            if busy[host_of(job.url)] < self.max_per_host:
                del self._waiting[index]
                return job
        return None

    def not_started(self) -> list[NotStarted]:
        """Once the run stopped starting jobs: every waiting job, with why it never ran."""
        gone, self._refused = self._refused, []
        if self._not_started is None:
            return gone
        status, reason = self._not_started
        gone += [NotStarted(job, status, reason) for job in self._waiting]
        self._waiting.clear()
        return gone

    def finished(self, name: str, status: str) -> bool:
        """Job ``name`` ended with ``status``; True if the running jobs must now be stopped."""
        self.running.discard(name)
        self._hosts.pop(name, None)
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

    # -- the deadline rule (pdbsync.run.deadline) ------------------------------------------

    def tick(self, now: float) -> bool:
        """The collector's clock (Unix time) for the deadline rule; True once, when the
        deadline's margin is reached and the running jobs must be stopped (the waiting
        ones are then ``skipped``). Without a deadline, or once stopping, nothing happens.
        """
        self.now = now
        if self.deadline is None or self.state is RunState.STOPPING:
            return False
        if not self.deadline.passed(now):
            return False
        self.state, self.stop_cause = RunState.STOPPING, self.deadline.stop_cause()
        self._not_started = ("skipped", self.deadline.reached_reason())
        return True

    def _refused_by_deadline(self, job: Job) -> bool:
        """Keep ``job`` from starting if it is not expected to finish before the deadline;
        it is then reported by :meth:`not_started` as ``skipped``, with why."""
        if self.deadline is None:
            return False
        reason = self.deadline.refusal(job.name, self.now)
        if reason is None:
            return False
        self._refused.append(NotStarted(job, "skipped", reason))
        return True


def longest_first(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` in the order to start them: the heaviest expected first (whole targets
    and split parts alike), so a run of many jobs ends near total / slots instead of
    waiting for a big one started last. Jobs of unknown weight go first (they may be
    the longest); ties keep the given order."""
    return sorted(jobs, key=lambda job: (job.expected is not None, -(job.expected or 0.0)))
