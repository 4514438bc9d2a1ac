"""The parent side of a run: the pool, the queue, and the collector loop.

The collector is the only consumer of the queue and (through the renderer) the only
writer to stdout. It schedules at most ``parallel`` jobs at a time (so fail-fast and
cancellation can stop scheduling), turns every worker message into events, notices a
worker that died without a result, and returns one :class:`SyncResult` per job in
job order.

Why not ``Pool.imap``: a task whose worker is killed (OOM killer, ``kill -9``) is never
completed, and ``imap``/``close()+join()`` would wait for it forever. Results come over
our own queue instead, and the pool is always taken down at the end.

How a run ends is part of the contract (docs/unattended.md): every process pdb-sync
starts dies with the main process however it dies, and a stop signal delivered to every
process at once (Slurm, ``timeout``, a closed terminal) ends the run as cleanly as one
delivered to the main process alone. See :func:`_start_method` for why that means the
fork start method.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
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
#: How long a lock the pool's threads also take must stay held, once the workers are
#: dead, to be a dead worker's.
LOCK_LOOK_SECONDS = 0.1
#: How long the pool gets to shut down before its workers are killed outright.
SHUTDOWN_SECONDS = 3.0
#: After a cancel, how long a worker gets to report its stopped rsync before the parent
#: writes the job off (the worker itself escalates to SIGKILL after worker.RSYNC_STOP_GRACE).
CANCEL_GRACE_SECONDS = 3.0

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class Interrupts:
    """Stop signals received by the parent during a run (set by the handlers, read by the loop).

    Every signal in :data:`worker.STOP_SIGNALS` cancels the run the same way; the first
    one names the cause (summary ``interrupted``, exit status 128 + its number). A second
    SIGINT is the impatient Ctrl-C: ``on_force`` leaves at once.
    """

    first: str | None = None  # "SIGTERM", "SIGINT", "SIGHUP", ...
    on_force: Callable[[], None] | None = None

    def handle(self, signum: int, _frame: object) -> None:
        if self.first is None:
            self.first = signal.Signals(signum).name
        elif signum == signal.SIGINT and self.on_force is not None:
            self.on_force()


@contextmanager
def catching_signals(interrupts: Interrupts) -> Iterator[Interrupts]:
    """Route the stop signals (SIGTERM, SIGINT, SIGHUP, SIGUSR1/2) to ``interrupts``.

    Without this, SIGHUP (a closed ssh session) and SIGUSR1 would end the parent at once,
    with no summary and workers left behind.
    """
    previous = {sig: signal.signal(sig, interrupts.handle) for sig in worker.STOP_SIGNALS}
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
    #: rsync process groups left behind by a dead worker: pgid -> when to SIGKILL them
    orphans: dict[int, float] = field(default_factory=dict)

    def run(self) -> list[SyncResult]:
        """Run every job; return the results in job order."""
        context = multiprocessing.get_context(_start_method())
        queue = context.Queue()
        size = max(1, min(self.parallel, len(self.jobs)))
        pool = context.Pool(size, initializer=worker.init_worker, initargs=(queue, os.getpid()))
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
                        self._finish(_unstarted(job, self.stop_reason, self._unstarted_reason()))
                    waiting = []
                self._drain(queue)
                self._reap_dead_workers(queue)
                if self.worker_died and self.running:
                    self._unstick_queue(queue)
                if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                    for state in list(self.running.values()):
                        self._write_off(
                            state, "cancelled", f"{self._stop_cause()}: rsync did not end in time"
                        )
                self._kill_orphans()
        finally:
            for state in self.running.values():  # only on an error in this loop
                self._doom(state.rsync_pid)
            self._kill_orphans(wait=True)
            _shut_down(pool)
            queue.close()
            queue.join_thread()
        return [self.results[job.name] for job in self.jobs]

    def _stop(self, reason: str, kill: bool) -> None:
        """Start no new job (the rest become ``reason``); with ``kill``, stop running rsyncs.

        Each running job's worker is asked to stop its rsync (SIGTERM): it ends the whole
        rsync process tree, escalating to SIGKILL, and still reports what was done.
        Workers get CANCEL_GRACE_SECONDS for that before their jobs are written off.
        """
        self.stop_reason = reason
        if kill:
            self.killing = True
            self.stop_deadline = time.monotonic() + CANCEL_GRACE_SECONDS
            for state in self.running.values():
                if state.worker_pid is not None:
                    _kill_process(state.worker_pid, signal.SIGTERM)

    def _unstarted_reason(self) -> str:
        """Why the jobs still waiting never start."""
        if self.interrupts.first:
            return f"{self._stop_cause()} before it started"
        return "not started: an earlier target failed (--fail-fast)"

    def _stop_cause(self) -> str:
        """Why running jobs are being stopped, in the words a summary reader needs."""
        if self.interrupts.first:
            return f"cancelled by {self.interrupts.first}"
        return "stopped after another target failed (--fail-fast=kill)"

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
            if self.killing:  # it took the job just as the run was being stopped
                _kill_process(state.worker_pid, signal.SIGTERM)
        elif kind == "rsync":
            state.rsync_pid = message[2]
            log.debug("{}: rsync pid {} (worker {})", name, state.rsync_pid, state.worker_pid)
        elif kind == "result":
            result = SyncResult.from_dict(message[2])
            if self.killing and result.status != "success":
                result.status = "cancelled"  # it ended because we stopped it
                result.error = self._stop_cause() + (f" ({result.error})" if result.error else "")
            self._finish(result)

    def _write_off(self, state: _Running, status: str, error: str) -> None:
        """End a running job the parent gives up on, keeping when it started.

        Its rsync, if any, is stopped too: a job written off must not go on writing into
        the mirror behind the summary's back.
        """
        self._doom(state.rsync_pid)
        result = _unstarted(state.job, status, error, started=state.worker_pid is not None)
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
        for state in dead:
            if state.job.name not in self.running:
                continue
            if self.interrupts.first:
                # A stop signal that reached every process (Slurm, `timeout`, a closed
                # terminal) may end a worker too: that is the cancel, not a crash.
                self._write_off(state, "cancelled", f"{self._stop_cause()} (worker ended)")
            else:
                self._write_off(
                    state,
                    "failed",
                    f"worker process {state.worker_pid} died unexpectedly "
                    "(killed by a signal: OOM killer or kill -9?)",
                )
        if not self.worker_died:
            return
        status = "cancelled" if self.interrupts.first else "failed"
        now = time.monotonic()
        for state in list(self.running.values()):
            if state.worker_pid is None and now - state.submitted > UNCLAIMED_SECONDS:
                self._write_off(
                    state,
                    status,
                    f"no worker took this target within {UNCLAIMED_SECONDS:.0f}s after a "
                    "worker process died (the pool is wedged)",
                )

    def _doom(self, rsync_pid: int | None) -> None:
        """Ask an rsync process group that no worker looks after any more to stop (SIGTERM
        now: rsync then tidies its partial file away), and SIGKILL it after the grace."""
        if rsync_pid is None or rsync_pid in self.orphans:
            return
        _kill(rsync_pid, signal.SIGTERM)
        self.orphans[rsync_pid] = time.monotonic() + worker.RSYNC_STOP_GRACE

    def _kill_orphans(self, wait: bool = False) -> None:
        """SIGKILL the doomed rsync groups whose grace is over; forget the ones gone.

        ``wait``: at the end of the run, keep at it until none is left (bounded by the
        grace), so no rsync of ours writes into the mirror after pdb-sync has exited.
        """
        while self.orphans:
            now = time.monotonic()
            for pgid, deadline in list(self.orphans.items()):
                if not _group_alive(pgid):
                    del self.orphans[pgid]
                elif now >= deadline:
                    _kill(pgid, signal.SIGKILL)
                    del self.orphans[pgid]
            if not wait:
                return
            if self.orphans:
                time.sleep(0.02)

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

    def _force_exit(self, pool: Any) -> None:
        """Second Ctrl-C: kill everything now and leave without a summary."""
        for state in self.running.values():
            if state.rsync_pid is not None:
                _kill(state.rsync_pid, signal.SIGKILL)
        for child in multiprocessing.active_children():
            _kill_process(child.pid, signal.SIGKILL)
        os._exit(130)


def _shut_down(pool: Any) -> None:
    """Take the pool down without waiting on a worker that cannot answer.

    By now every job has a result or was written off, so the workers are idle and hold
    nothing worth keeping: they are SIGKILLed. First the pool is told to stop replacing
    workers that die (or it would fork new ones while we kill), then the locks a killed
    worker may have held are freed, so that ``Pool.terminate`` (which takes them) cannot
    hang. These steps use the pool's internals, so each is guarded, and terminate still
    runs in a daemon thread with a bound, killing what is left after SHUTDOWN_SECONDS.
    """
    handler = getattr(pool, "_worker_handler", None)
    notifier = getattr(pool, "_change_notifier", None)
    if handler is not None and notifier is not None:
        handler._state = multiprocessing.pool.TERMINATE
        notifier.put(None)
        handler.join(SHUTDOWN_SECONDS)
    workers = list(getattr(pool, "_pool", []))
    for process in workers:
        if process.exitcode is None:
            _kill_process(process.pid, signal.SIGKILL)
    for process in workers:
        process.join(SHUTDOWN_SECONDS)
    if not (handler is not None and handler.is_alive()):
        # An idle worker waits for a task holding the task queue's read lock, which no
        # thread of ours takes before terminate. A worker may also be killed while
        # putting its task's return value (the result queue's write lock), which the
        # pool's task-handler thread takes for a moment too.
        inqueue, outqueue = getattr(pool, "_inqueue", None), getattr(pool, "_outqueue", None)
        _free_lock_of_the_dead(getattr(inqueue, "_rlock", None), look=0.0)
        _free_lock_of_the_dead(getattr(outqueue, "_wlock", None), look=LOCK_LOOK_SECONDS)
    closer = threading.Thread(target=pool.terminate, name="pool-terminate", daemon=True)
    closer.start()
    closer.join(SHUTDOWN_SECONDS)
    if closer.is_alive():
        log.warning("worker pool did not stop in {}s; killing its workers", SHUTDOWN_SECONDS)
        for child in multiprocessing.active_children():
            _kill_process(child.pid, signal.SIGKILL)
        closer.join(SHUTDOWN_SECONDS)


def _free_lock_of_the_dead(lock: Any, look: float) -> None:
    """Release ``lock`` if it stays held for ``look`` seconds: once every worker is dead,
    a lock that no live thread releases within that time can only be a dead worker's."""
    if lock is None:
        return
    if lock.acquire(timeout=look) if look > 0 else lock.acquire(False):
        lock.release()  # free, or briefly held by one of the pool's threads
    else:
        lock.release()


def _kill(pgid: int, signum: int) -> None:
    """Signal rsync's whole process group (rsync leads its own session; the receiver it
    forks is in the same group), or the lone process if the group is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        _kill_process(pgid, signum)


def _kill_process(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_method() -> str:
    """fork, on purpose: it is the only start method under which nothing outlives a run.

    - Under fork the workers are the main process's own children, forked (at pool start)
      from its main thread, so ``PR_SET_PDEATHSIG`` ties each to the main process: a
      ``kill -9`` of pdb-sync (the OOM killer) takes the workers, and through them every
      rsync, down with it. Under forkserver they are the server's children, and nothing
      tells them the main process is gone.
    - Under fork CPython unlinks the queue's and pool's POSIX semaphores at creation
      (``multiprocessing/synchronize.py``), so a run SIGKILLed whole (Slurm after
      KillWait, a cgroup OOM kill) leaves nothing in ``/dev/shm``; forkserver and spawn
      keep them named until a resource tracker process unlinks them, which dies too.
    - No forkserver and no resource tracker: two fewer processes to outlive anything.

    fork is unsafe once a process has threads. The pool's first workers are forked
    before the pool starts its own threads, and pdb-sync's parent starts none before
    that. A worker the pool replaces later (after one was killed) is forked from the
    pool's worker-handler thread; the workers use no lock that the parent's other
    threads hold (they write only to the queue, loguru re-initialises its locks at fork).
    """
    return "fork"


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
