"""The collector: the parent's loop that hands jobs to the pool and turns worker messages
into events and results.

It joins the two halves of a run: the :class:`~pdbsync.run.scheduler.Scheduler` decides
which job starts and what a failure or a cancel means for the rest (pure, tested
without processes), and the :class:`~pdbsync.run.supervisor.Supervisor` owns the processes
(pool, queue, dead workers, orphaned rsyncs, shutdown). The collector is the only consumer
of the queue and hands every event to one sink (the renderer, or a library caller's
callback); it returns one :class:`SyncResult` per job in job order.

Why not ``Pool.imap``: a task whose worker is killed (OOM killer, ``kill -9``) is never
completed, and ``imap``/``close()+join()`` would wait for it forever. Results come over
our own queue instead, and the pool is always taken down at the end.

Cancelling: anything with ``is_set()`` (a ``threading.Event``; the CLI's signal
handlers set :class:`pdbsync.cli.interrupts.Interrupts`) is polled between queue reads, so
no signal handler is needed and a run works from any thread.
"""

from __future__ import annotations

import queue as queue_module
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pdbsync import log
from pdbsync.events import make_event, utc_now
from pdbsync.messages import (
    EventBatch,
    JobFinished,
    Message,
    OutputLines,
    RsyncStarted,
    WorkerStarted,
    lines_sink,
)
from pdbsync.report.summary import SyncResult
from pdbsync.rsync.exits import exit_meaning
from pdbsync.run.deadline import Deadline
from pdbsync.run.jobs import Job
from pdbsync.run.parts import merge_plans, merge_results
from pdbsync.run.plan_mode import plan_event
from pdbsync.run.scheduler import RunState, Scheduler, longest_first
from pdbsync.run.supervisor import Supervisor
from pdbsync.units import human_bytes, transfer_details

#: How long the collector waits on the queue before checking workers and the cancel flag.
POLL_SECONDS = 0.05
#: The longest the side work waits for the first round of rsyncs to start (seconds).
TRANSFERS_START_SECONDS = 0.5
#: After a worker died, a job no worker has taken for this long is written off.
UNCLAIMED_SECONDS = 10.0
#: After a stop, how long a worker gets to report its stopped rsync before the parent
#: writes the job off (the worker itself escalates to SIGKILL after worker.RSYNC_STOP_GRACE).
CANCEL_GRACE_SECONDS = 3.0
#: What a cancel without a name of its own is called in the summary (``interrupted``).
CANCEL = "cancel"


class EventSink(Protocol):
    """Where a run's events go: called once per event, a dict shaped as
    schemas/event.schema.json (docs/events.md), in the order they happen.

    Two methods are optional and looked up by name, so a plain function or
    ``list.append`` is a sink: ``flush()``, called after each burst of events (a file or
    a screen writes them out), and ``note(text)``, which gets the lines for people that
    are not events (which mirror ``mirror = "auto"`` chose, and why)."""

    def __call__(self, event: dict[str, Any], /) -> None: ...


class CancelFlag(Protocol):
    """Anything that says whether to stop (``threading.Event``); an optional ``reason``
    attribute names the cause (the CLI's signal name)."""

    def is_set(self) -> bool: ...


def cancel_reason(cancel: CancelFlag | None) -> str | None:
    """The cancel's name once it is set (``SIGTERM``..., or ``cancel``), else None."""
    if cancel is None or not cancel.is_set():
        return None
    return getattr(cancel, "reason", None) or CANCEL


@dataclass
class _Running:
    job: Job
    submitted: float = 0.0  # monotonic time the job went to the pool
    worker_pid: int | None = None
    rsync_pid: int | None = None  # the current attempt's rsync; None between attempts
    rsync_seen: bool = False  # an rsync of this job has started (for on_transfers_started)
    started_at: str | None = None  # when a worker took it (UTC, for the summary)
    started: float | None = None  # the same, monotonic
    slot: int | None = None  # the pool slot (1..parallel) it runs in: the report's lane


@dataclass
class Collector:
    """Runs jobs on a pool and collects their events and results.

    ``emit`` gets every event; if it also has a ``flush()`` method, that is called after
    each burst of events (a renderer buffers its writes until then). If it has an
    ``output_lines()`` method, runs of ``output`` events come to it at once, as the
    :class:`~pdbsync.messages.OutputLines` a worker sent (a renderer writes them in
    bulk); otherwise they come one event at a time like the rest.
    """

    jobs: list[Job]
    parallel: int
    emit: EventSink
    cancel: CancelFlag | None = None
    fail_fast: str | None = None  # None, "wait" (let running finish) or "kill"
    start_method: str | None = None
    #: called once, when every job of the first round has started its rsync (or ended),
    #: or TRANSFERS_START_SECONDS after the pool forked: work that may overlap the
    #: transfers but should not slow down their start (see _start_side_work)
    on_transfers_started: Callable[[], None] | None = None
    deadline: Deadline | None = None  # --deadline (see pdbsync.run.deadline)
    results: dict[str, SyncResult] = field(default_factory=dict)
    running: dict[str, _Running] = field(default_factory=dict)
    interrupted: str | None = None  # the cancel's name, once the run was cancelled
    worker_died: bool = False
    last_message_at: float = 0.0
    stop_deadline: float | None = None  # when stopped rsyncs are written off
    max_per_host: int | None = None  # running jobs per mirror host (pdbsync.rsync.hosts)
    #: keys of the jobs that have a result (a split target's parts: ``mmcif 2/4``)
    finished_keys: set[str] = field(default_factory=set)
    #: a split target's finished parts, and (plan runs) their plan events, by part
    part_results: dict[str, dict[int, tuple[Job, SyncResult]]] = field(default_factory=dict)
    part_plans: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def run(self) -> list[SyncResult]:
        """Run every job; return the results in job order."""
        size = max(1, min(self.parallel, len(self.jobs)))
        self.scheduler = Scheduler(
            self.jobs,
            size,
            self.fail_fast,
            deadline=self.deadline,
            max_per_host=self.max_per_host,
        )
        log_start_order(self.jobs)
        self.flush: Callable[[], None] = getattr(self.emit, "flush", None) or (lambda: None)
        self.emit_lines = lines_sink(self.emit)
        self.supervisor = Supervisor(size, self.start_method)
        self.pool_started = time.monotonic()
        try:
            while not self.scheduler.done:
                self._check_cancel()
                if self.scheduler.tick(time.time()):  # the deadline's margin is reached
                    self._stop_running()
                for job in self.scheduler.to_start():
                    self.running[job.key] = _Running(
                        job, submitted=time.monotonic(), slot=self._free_slot()
                    )
                    log.info("{}: starting: {}", job.key, shlex.join(job.argv))
                    self.supervisor.submit(job)
                for gone in self.scheduler.not_started():
                    self._finish(_unstarted(gone.job, gone.status, gone.reason), gone.job)
                self._drain()
                self._start_side_work()
                self._reap_dead_workers()
                if self.worker_died and self.running:
                    self.supervisor.unstick_queue(self.last_message_at)
                if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                    for state in list(self.running.values()):
                        self._write_off(
                            state, "cancelled", f"{self._stop_cause()}: rsync did not end in time"
                        )
                self.supervisor.kill_orphans()
        finally:
            for state in self.running.values():  # only on an error in this loop
                self.supervisor.doom(state.rsync_pid)
            self.supervisor.close()
        return [self.results[name] for name in dict.fromkeys(job.name for job in self.jobs)]

    def _free_slot(self) -> int:
        """The lowest pool slot (1..parallel) no running job holds: the lane a job's bars
        take in the report's timeline, so a reader sees which ran side by side and where
        the pool sat idle. The scheduler never runs more jobs than slots."""
        taken = {state.slot for state in self.running.values()}
        return next(slot for slot in range(1, len(taken) + 2) if slot not in taken)

    def _start_side_work(self) -> None:
        """Call ``on_transfers_started`` once the running jobs' rsyncs have all started.

        Why wait: the side work (importing jsonschema, a slow import) runs in a thread of
        this process, and until the last job is handed over the pool's task thread needs
        the GIL to send it. Started right after the fork, it delayed the fourth rsync of
        a 4-target run (traced; docs/benchmarks.md). A job that never gets to its rsync
        (a retry's wait, a stuck worker) holds it back at most TRANSFERS_START_SECONDS.
        """
        if self.on_transfers_started is None:
            return
        started = all(state.rsync_seen for state in self.running.values())
        if started or time.monotonic() - self.pool_started >= TRANSFERS_START_SECONDS:
            side_work, self.on_transfers_started = self.on_transfers_started, None
            try:
                side_work()
            except Exception as exc:  # optional work must not stop transfers under way
                log.warning("work beside the transfers did not start: {!r}", exc)

    def _check_cancel(self) -> None:
        reason = cancel_reason(self.cancel)
        if reason is not None and self.interrupted is None:
            self.interrupted = reason
            if self.scheduler.cancel(self._stop_cause()):
                self._stop_running()

    def _stop_running(self) -> None:
        """Ask every running job's worker to stop its rsync (SIGTERM): it ends the whole
        rsync process tree, escalating to SIGKILL, and still reports what was done.
        Workers get CANCEL_GRACE_SECONDS for that before their jobs are written off."""
        self.stop_deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        for state in self.running.values():
            if state.worker_pid is not None:
                self.supervisor.stop_worker(state.worker_pid)

    def _stop_cause(self) -> str:
        """Why running jobs are being stopped, in the words a summary reader needs."""
        if self.interrupted:
            return f"cancelled by {self.interrupted}"
        return self.scheduler.stop_cause or "stopped"

    # -- queue messages --------------------------------------------------------------

    def _drain(self) -> None:
        """Handle every message that arrives within one poll interval, then flush output."""
        queue = self.supervisor.queue
        try:
            message = queue.get(timeout=POLL_SECONDS)
        except (queue_module.Empty, InterruptedError):
            return
        handled = 0
        self.last_message_at = time.monotonic()
        while True:
            self._handle(message)
            handled += 1
            if handled >= 2000:
                break
            try:
                message = queue.get_nowait()
            except queue_module.Empty:
                break
        self.flush()

    def _handle(self, message: Message) -> None:
        if isinstance(message, EventBatch):
            self._pass_on(message.events)
            return
        state = self.running.get(message.name)
        if state is None:
            return  # a late message from a job already written off
        if isinstance(message, WorkerStarted):
            self._worker_started(state, message)
        elif isinstance(message, RsyncStarted):
            state.rsync_pid = message.pid
            state.rsync_seen = state.rsync_seen or message.pid is not None
            log.debug("{}: rsync pid {} (worker {})", message.name, message.pid, state.worker_pid)
        elif isinstance(message, JobFinished):
            self._job_finished(state, message)

    def _pass_on(self, events: list[dict[str, Any] | OutputLines]) -> None:
        """Hand a worker's events to the sink, except those of a job that already has its
        result (nothing may follow a target's end) and a split target's part plans, which
        are kept to be merged at the target's end."""
        for event in events:
            if isinstance(event, OutputLines):
                if event.key not in self.finished_keys:
                    self.emit_lines(event)
            elif event_key(event) in self.finished_keys:
                continue
            elif event["type"] == "plan" and "part" in event:
                self.part_plans.setdefault(event["name"], {})[event["part"]] = event
            else:
                self.emit(event)

    def _worker_started(self, state: _Running, message: WorkerStarted) -> None:
        state.worker_pid = message.pid
        state.started_at = utc_now()
        state.started = time.monotonic()
        if self.scheduler.state is RunState.STOPPING:  # it took the job as we stopped
            self.supervisor.stop_worker(message.pid)

    def _job_finished(self, state: _Running, message: JobFinished) -> None:
        """The worker's result; one that ended because the run stopped it is cancelled."""
        result = SyncResult.from_dict(message.result)
        if self.scheduler.state is RunState.STOPPING and result.status != "success":
            result.status = "cancelled"  # it ended because we stopped it
            detail = f" ({result.error})" if result.error else ""
            result.error = self._stop_cause() + detail
        self._finish(result, state.job)

    def _write_off(self, state: _Running, status: str, error: str) -> None:
        """End a running job the parent gives up on, keeping when it started.

        Its rsync, if any, is stopped too: a job written off must not go on writing into
        the mirror behind the summary's back.
        """
        self.supervisor.doom(state.rsync_pid)
        result = _unstarted(state.job, status, error, started=state.worker_pid is not None)
        result.started_at = state.started_at
        if state.started is not None:
            result.duration_s = round(time.monotonic() - state.started, 3)
        if state.started_at is not None:  # the attempt the worker took with it
            result.attempt_log = [
                {
                    "attempt": 1,
                    "started_at": state.started_at,
                    "finished_at": result.finished_at,
                    "exit_code": None,
                    "bytes_transferred": None,
                }
            ]
        self._finish(result, state.job)

    def _finish(self, result: SyncResult, job: Job) -> None:
        log.info(
            "{}: {} (rsync exit {}, {} attempt(s), {:.1f}s)",
            job.key,
            result.status,
            result.exit_code,
            result.attempts,
            result.duration_s,
        )
        state = self.running.pop(job.key, None)
        if state is not None and result.attempts:  # it ran in a slot (not: never started)
            result.slot = state.slot
        self.finished_keys.add(job.key)
        if job.parts:
            self._part_finished(job, result)
        else:
            self.results[result.name] = result
            self.emit(finished_event(result))
        self.flush()
        if self.scheduler.finished(job.key, result.status):
            self._stop_running()

    def _part_finished(self, job: Job, result: SyncResult) -> None:
        """A part's ``part_finished``; after the target's last part, its merged plan (in a
        plan run) and its one ``sync_finished`` with the merged result."""
        done = self.part_results.setdefault(job.name, {})
        done[job.part] = (job, result)
        self.emit(
            make_event(
                "part_finished",
                job.name,
                finished_message(result),
                part=job.part,
                parts=job.parts,
                result=result.to_dict(),
            )
        )
        if len(done) < job.parts:
            return
        pairs = [done[part] for part in sorted(done)]
        merged = merge_results([j for j, _ in pairs], [r for _, r in pairs])
        plans = self.part_plans.pop(job.name, {})
        if len(plans) == job.parts and merged.status == "success":
            numbers = merge_plans(job, [plans[part] for part in sorted(plans)])
            self.emit(plan_event(job.name, numbers))
        self.results[job.name] = merged
        self.emit(finished_event(merged))

    # -- failures of the machinery ---------------------------------------------------

    def _reap_dead_workers(self) -> None:
        """Write off every running job whose worker process is gone without a result.

        Also a job no worker took within UNCLAIMED_SECONDS after a worker died: a worker
        killed while idle can take the pool's task lock with it, and then no other
        worker can receive a task.
        """
        known = {s.worker_pid: s for s in self.running.values() if s.worker_pid is not None}
        dead = self.supervisor.dead(list(known))
        if dead:
            self.worker_died = True
            self._drain_now()  # its last messages, result included, may still be queued
        for pid in dead:
            state = known[pid]
            if state.job.key not in self.running:
                continue
            if self.interrupted:
                # A stop signal that reached every process (Slurm, `timeout`, a closed
                # terminal) may end a worker too: that is the cancel, not a crash.
                self._write_off(state, "cancelled", f"{self._stop_cause()} (worker ended)")
            else:
                self._write_off(
                    state,
                    "failed",
                    f"worker process {pid} died unexpectedly "
                    "(killed by a signal: OOM killer or kill -9?)",
                )
        if not self.worker_died:
            return
        status = "cancelled" if self.interrupted else "failed"
        now = time.monotonic()
        for state in list(self.running.values()):
            if state.worker_pid is None and now - state.submitted > UNCLAIMED_SECONDS:
                self._write_off(
                    state,
                    status,
                    f"no worker took this target within {UNCLAIMED_SECONDS:.0f}s after a "
                    "worker process died (the pool is wedged)",
                )

    def _drain_now(self) -> None:
        while True:
            try:
                self._handle(self.supervisor.queue.get_nowait())
            except queue_module.Empty:
                return


def event_key(event: dict[str, Any]) -> str | None:
    """The key of the job an event belongs to (``mmcif`` or ``mmcif 2/4``; None: run-level)."""
    if "part" in event:
        return f"{event['name']} {event['part']}/{event['parts']}"
    return event.get("name")


def log_start_order(jobs: list[Job]) -> None:
    """Say (``-v``) in which order jobs will start: longest first, by expected bytes."""
    ordered = longest_first(jobs)
    if len(ordered) < 2:
        return
    shown = [
        f"{job.key} ({human_bytes(job.expected)})" if job.expected is not None else job.key
        for job in ordered
    ]
    log.info("start order (longest first, by expected size): {}", ", ".join(shown))


def _unstarted(job: Job, status: str, reason: str, started: bool = False) -> SyncResult:
    """The result of a job that produced none of its own, with ``reason`` as its error."""
    return SyncResult.without_outcome(job, status, reason, attempts=1 if started else 0)


def finished_event(result: SyncResult) -> dict[str, Any]:
    """The ``sync_finished`` event for a result, with its one-line human message."""
    return make_event(
        "sync_finished", result.name, finished_message(result), result=result.to_dict()
    )


def finished_message(result: SyncResult) -> str:
    """``Completed in 12.3s`` / ``FAILED (exit 23): reason`` / ``CANCELLED`` / ``SKIPPED``."""
    if result.status == "success":
        details = transfer_details(result.stats, result.duration_s)
        return f"Completed in {result.duration_s:.1f}s" + (f": {details}" if details else "")
    if result.status == "failed":
        code = f"exit {result.exit_code}" if result.exit_code is not None else "no exit code"
        reason = result.error or exit_meaning(result.exit_code)
        return f"FAILED ({code}): {reason}"
    return f"{result.status.upper()}: {result.error}"
