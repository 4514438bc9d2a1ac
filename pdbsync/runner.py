"""The parent side of a run: the pool, the queue, and the collector loop.

The collector is the only consumer of the queue and (through the renderer) the only
writer to stdout. It schedules at most ``parallel`` jobs at a time (so fail-fast and
cancellation can stop scheduling), turns every worker message into events, notices a
worker that died without a result, and returns one :class:`SyncResult` per job in
job order.

Why not ``Pool.imap``: a task whose worker is killed (OOM killer, ``kill -9``) is never
completed, and ``imap``/``close()+join()`` would wait for it forever. Results come over
our own queue instead, and the pool is always terminated at the end.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from pdbsync import log, worker
from pdbsync.events import make_event, utc_now
from pdbsync.jobs import Job
from pdbsync.rsync import exit_meaning
from pdbsync.summary import SyncResult
from pdbsync.units import transfer_details

#: How long the collector waits on the queue before checking workers and signals.
POLL_SECONDS = 0.2
#: A queue write lock held this long after a worker died is the dead worker's (see
#: Collector._unstick_queue).
STUCK_LOCK_SECONDS = 2.0
#: After a worker died, a job no worker has taken for this long is written off.
UNCLAIMED_SECONDS = 10.0
#: How long the pool gets to shut down before its workers are killed outright.
SHUTDOWN_SECONDS = 3.0
#: After a cancel, how long rsync gets to stop cleanly before the pool is killed.
CANCEL_GRACE_SECONDS = 3.0

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class Interrupts:
    """Signals received by the parent during a run (set by the handlers, read by the loop)."""

    first: str | None = None  # "SIGINT" or "SIGTERM"
    on_force: Callable[[], None] | None = None

    def handle(self, signum: int, _frame: object) -> None:
        if self.first is None:
            self.first = signal.Signals(signum).name
        elif signum == signal.SIGINT and self.on_force is not None:
            self.on_force()


@contextmanager
def catching_signals(interrupts: Interrupts) -> Iterator[Interrupts]:
    """Route SIGINT and SIGTERM to ``interrupts`` for the duration of the run."""
    previous = {
        sig: signal.signal(sig, interrupts.handle) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield interrupts
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class _Running:
    job: Job
    submitted: float = 0.0  # monotonic time the job went to the pool
    worker_pid: int | None = None
    rsync_pid: int | None = None  # the current attempt's rsync; None between attempts
    started_at: str | None = None  # when a worker took it (UTC, for the summary)
    started: float | None = None  # the same, monotonic


@dataclass
class Collector:
    """Runs jobs on a pool and collects their events and results."""

    jobs: list[Job]
    parallel: int
    emit: EventSink
    flush: Callable[[], None]
    interrupts: Interrupts = field(default_factory=Interrupts)
    fail_fast: str | None = None  # None, "wait" (let running finish) or "kill"
    results: dict[str, SyncResult] = field(default_factory=dict)
    running: dict[str, _Running] = field(default_factory=dict)
    worker_died: bool = False
    lock_held_since: float | None = None
    last_message_at: float = 0.0
    stop_reason: str | None = None  # why no new job starts: "cancelled" or "skipped"
    stop_deadline: float | None = None  # when stopped rsyncs are written off
    killing: bool = False  # running rsyncs are being stopped (cancel, --fail-fast=kill)

    def run(self) -> list[SyncResult]:
        """Run every job; return the results in job order."""
        context = warm_up()
        queue = context.Queue()
        size = max(1, min(self.parallel, len(self.jobs)))
        pool = context.Pool(size, initializer=worker.init_worker, initargs=(queue,))
        log.debug(
            "pool of {} {} workers for {} jobs", size, context.get_start_method(), len(self.jobs)
        )
        self.interrupts.on_force = lambda: self._force_exit(pool)
        waiting = list(self.jobs)
        try:
            while waiting or self.running:
                if self.interrupts.first and self.stop_reason != "cancelled":
                    self._stop("cancelled", kill=True)
                if self.stop_reason is None:
                    while waiting and len(self.running) < size:
                        job = waiting.pop(0)
                        self.running[job.name] = _Running(job, submitted=time.monotonic())
                        log.info("{}: starting: {}", job.name, shlex.join(job.argv))
                        pool.apply_async(worker.run_job, (job,))
                else:
                    for job in waiting:
                        self._finish(_unstarted(job, self.stop_reason))
                    waiting = []
                self._drain(queue)
                self._reap_dead_workers(queue)
                if self.worker_died and self.running:
                    self._unstick_queue(queue)
                if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                    for state in list(self.running.values()):
                        self._write_off(state, "cancelled", "stopped: rsync did not end in time")
        finally:
            self._signal_rsyncs(signal.SIGTERM)
            _shut_down(pool)
            queue.close()
            queue.join_thread()
        return [self.results[job.name] for job in self.jobs]

    def _stop(self, reason: str, kill: bool) -> None:
        """Start no new job (the rest become ``reason``); with ``kill``, stop running rsyncs.

        Killed rsyncs get CANCEL_GRACE_SECONDS to report before their jobs are written off.
        """
        self.stop_reason = reason
        if kill:
            self.killing = True
            self.stop_deadline = time.monotonic() + CANCEL_GRACE_SECONDS
            self._signal_rsyncs(signal.SIGTERM)

    # -- queue messages --------------------------------------------------------------

    def _drain(self, queue: Any) -> None:
        """Handle every message that arrives within one poll interval, then flush output."""
        try:
            message = queue.get(timeout=POLL_SECONDS)
        except queue_module.Empty:
            return
        except InterruptedError:
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

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "events":
            for event in message[1]:
                if event.get("name") not in self.results:  # nothing after sync_finished
                    self.emit(event)
            return
        name = message[1]
        state = self.running.get(name)
        if state is None:
            return  # a late message from a job already written off
        if kind == "worker":
            state.worker_pid = message[2]
            state.started_at = utc_now()
            state.started = time.monotonic()
        elif kind == "rsync":
            state.rsync_pid = message[2]
            log.debug("{}: rsync pid {} (worker {})", name, state.rsync_pid, state.worker_pid)
            if self.killing and state.rsync_pid is not None:
                _kill(state.rsync_pid, signal.SIGTERM)
        elif kind == "result":
            result = SyncResult.from_dict(message[2])
            if self.killing and result.status != "success":
                result.status = "cancelled"  # it failed because we stopped it
            self._finish(result)

    def _write_off(self, state: _Running, status: str, error: str) -> None:
        """End a running job the parent gives up on, keeping when it started."""
        result = _unstarted(state.job, status, started=state.worker_pid is not None)
        result.error = error
        result.started_at = state.started_at
        if state.started is not None:
            result.duration_s = round(time.monotonic() - state.started, 3)
        self._finish(result)

    def _finish(self, result: SyncResult) -> None:
        log.info(
            "{}: {} (rsync exit {}, {} attempt(s), {:.1f}s)",
            result.name,
            result.status,
            result.exit_code,
            result.attempts,
            result.duration_s,
        )
        self.running.pop(result.name, None)
        self.results[result.name] = result
        self.emit(finished_event(result))
        self.flush()
        if result.status == "failed" and self.fail_fast and self.stop_reason is None:
            self._stop("skipped", kill=self.fail_fast == "kill")

    # -- failures of the machinery ---------------------------------------------------

    def _reap_dead_workers(self, queue: Any) -> None:
        """Write off every running job whose worker process is gone without a result.

        Also a job no worker took within UNCLAIMED_SECONDS after a worker died: a worker
        killed while idle can take the pool's task lock with it, and then no other
        worker can receive a task.
        """
        known = [s for s in self.running.values() if s.worker_pid is not None]
        alive = {child.pid for child in multiprocessing.active_children()} if known else set()
        dead = [s for s in known if s.worker_pid not in alive]
        if dead:
            self.worker_died = True
            self._drain_now(queue)  # its last messages, result included, may still be queued
        status = "cancelled" if self.interrupts.first else "failed"
        for state in dead:
            if state.job.name in self.running:
                self._write_off(
                    state,
                    status,
                    f"worker process {state.worker_pid} died unexpectedly "
                    "(killed by a signal: OOM killer or kill -9?)",
                )
        if not self.worker_died:
            return
        now = time.monotonic()
        for state in list(self.running.values()):
            if state.worker_pid is None and now - state.submitted > UNCLAIMED_SECONDS:
                self._write_off(
                    state,
                    status,
                    f"no worker took this target within {UNCLAIMED_SECONDS:.0f}s after a "
                    "worker process died (the pool is wedged)",
                )

    def _unstick_queue(self, queue: Any, now: float | None = None) -> None:
        """Free the queue's write lock if a killed worker died holding it.

        Workers share one lock for writing to the queue's pipe; a worker killed while
        it held it (``kill -9`` during a put) would block every other worker forever.
        While the parent keeps reading, a live worker holds the lock only for the
        moment a write takes, so a lock found held at every look for
        STUCK_LOCK_SECONDS, with no message arriving meanwhile, after a worker died, can
        only be the dead one's.
        """
        lock = getattr(queue, "_wlock", None)
        if lock is None:
            return
        now = time.monotonic() if now is None else now
        if lock.acquire(False):
            lock.release()
            self.lock_held_since = None
            return
        if self.lock_held_since is None or self.last_message_at > self.lock_held_since:
            self.lock_held_since = now  # messages still arrive: a live writer has it
        elif now - self.lock_held_since >= STUCK_LOCK_SECONDS:
            log.warning("a dead worker held the event queue's write lock; releasing it")
            lock.release()
            self.lock_held_since = None

    def _drain_now(self, queue: Any) -> None:
        while True:
            try:
                self._handle(queue.get_nowait())
            except queue_module.Empty:
                return

    def _signal_rsyncs(self, signum: int) -> None:
        for state in self.running.values():
            if state.rsync_pid is not None:
                _kill(state.rsync_pid, signum)

    def _force_exit(self, pool: Any) -> None:
        """Second Ctrl-C: kill everything now and leave without a summary."""
        self._signal_rsyncs(signal.SIGKILL)
        for child in multiprocessing.active_children():
            _kill(child.pid, signal.SIGKILL)
        os._exit(130)


def _shut_down(pool: Any) -> None:
    """Terminate the pool, killing its workers if it does not finish in time.

    ``Pool.terminate`` waits for the lock that idle workers hold while they wait for a
    task; a worker killed while idle (``kill -9``, the OOM killer, a job-wide SIGTERM)
    never releases it, and terminate would wait forever. So it runs in a daemon thread
    and the workers are killed outright after SHUTDOWN_SECONDS.
    """
    closer = threading.Thread(target=pool.terminate, name="pool-terminate", daemon=True)
    closer.start()
    closer.join(SHUTDOWN_SECONDS)
    if closer.is_alive():
        log.warning("worker pool did not stop in {}s; killing its workers", SHUTDOWN_SECONDS)
        for child in multiprocessing.active_children():
            _kill(child.pid, signal.SIGKILL)
        closer.join(SHUTDOWN_SECONDS)


def _kill(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)  # rsync leads its own session: reach its helpers too
    except (ProcessLookupError, PermissionError):
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def warm_up() -> Any:
    """Choose the start method and, for forkserver, start the server now.

    Called early (before the config is read) the server's interpreter start and its
    import of the worker code overlap with our own start-up; calling it again is free.
    """
    context = multiprocessing.get_context(_start_method())
    if context.get_start_method() == "forkserver":
        # Workers fork from a server that has imported the worker code once.
        context.set_forkserver_preload(["pdbsync.worker"])
        from multiprocessing import forkserver

        forkserver.ensure_running()
    return context


def _start_method() -> str:
    """forkserver where available: fork is unsafe once threads exist, spawn is slower."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


#: Why a target that never produced a result of its own ended as it did.
_NO_OUTCOME_REASONS = {
    "cancelled": "run interrupted before this target finished",
    "skipped": "not started: an earlier target failed (--fail-fast)",
}


def _unstarted(job: Job, status: str, started: bool = False) -> SyncResult:
    return SyncResult.without_outcome(
        job, status, _NO_OUTCOME_REASONS.get(status), attempts=1 if started else 0
    )


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
