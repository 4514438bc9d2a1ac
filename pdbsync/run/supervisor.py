"""The processes of a run: the worker pool and its queue, and everything that can go
wrong with them (a worker killed from outside, a lock a dead worker took with it, an
rsync left without its worker, a pool that will not stop).

How a run ends is part of the contract (docs/unattended.md): every process pdb-sync
starts dies with the main process however it dies, and nothing is left in ``/dev/shm``.
See :func:`start_method` for why that means the fork start method.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
import threading
import time
from contextlib import suppress
from typing import Any

from pdbsync import log
from pdbsync.rsync.process import group_alive, kill_group, kill_process
from pdbsync.run import worker
from pdbsync.run.jobs import Job

#: A queue write lock held this long after a worker died is the dead worker's (see
#: StuckLockWatch).
STUCK_LOCK_SECONDS = 2.0
#: How long the pool gets to shut down before its workers are killed outright.
SHUTDOWN_SECONDS = 3.0
#: How long a lock the pool's threads also take must stay held, once the workers are
#: dead, to be a dead worker's.
LOCK_LOOK_SECONDS = 0.1


def start_method() -> str:
    """fork, on purpose: it is the only start method under which nothing outlives a run.

    - Under fork the workers are the main process's own children, forked (at pool start)
      from the thread that starts the run, so ``PR_SET_PDEATHSIG`` ties each to it: a
      ``kill -9`` of pdb-sync (the OOM killer) takes the workers, and through them every
      rsync, down with it. Under forkserver they are the server's children, and nothing
      tells them the main process is gone.
    - Under fork CPython unlinks the queue's and pool's POSIX semaphores at creation
      (``multiprocessing/synchronize.py``), so a run SIGKILLed whole (Slurm after
      KillWait, a cgroup OOM kill) leaves nothing in ``/dev/shm``; forkserver and spawn
      keep them named until a resource tracker process unlinks them, which dies too.
    - No forkserver and no resource tracker: two fewer processes to outlive anything.

    fork is unsafe once a process has threads. The pool's first workers are forked
    before the pool starts its own threads, and pdb-sync's CLI starts none before that.
    A worker the pool replaces later (after one was killed) is forked from the pool's
    worker-handler thread; the workers take no lock that the parent's other threads hold
    (they write only to the queue; loguru re-initialises its locks at fork). A library
    caller with threads of its own can pass ``start_method="forkserver"`` to
    :func:`pdbsync.sync` and give up the kill -9 guarantees.
    """
    return "fork"


class Supervisor:
    """Owns the pool, the queue, and the stopping and reaping of processes."""

    def __init__(self, size: int, method: str | None = None) -> None:
        context = multiprocessing.get_context(method or start_method())
        self.queue = context.Queue()
        self.pool = context.Pool(
            size, initializer=worker.init_worker, initargs=(self.queue, os.getpid())
        )
        self.stuck_lock = StuckLockWatch()
        #: rsync process groups no worker looks after any more: pgid -> when to SIGKILL
        self.orphans: dict[int, float] = {}
        log.debug("pool of {} {} workers", size, context.get_start_method())

    def submit(self, job: Job) -> None:
        self.pool.apply_async(worker.run_job, (job,))

    @staticmethod
    def stop_worker(pid: int) -> None:
        """Ask a busy worker to stop its rsync (it ends rsync's whole tree and reports)."""
        kill_process(pid, signal.SIGTERM)

    @staticmethod
    def dead(pids: list[int]) -> set[int]:
        """Which of these worker pids are no longer alive."""
        if not pids:
            return set()
        alive = {child.pid for child in multiprocessing.active_children()}
        return {pid for pid in pids if pid not in alive}

    def doom(self, rsync_pid: int | None) -> None:
        """Ask an rsync process group that no worker looks after any more to stop (SIGTERM
        now: rsync then moves its partial file aside), and SIGKILL it after the grace."""
        if rsync_pid is None or rsync_pid in self.orphans:
            return
        kill_group(rsync_pid, signal.SIGTERM)
        self.orphans[rsync_pid] = time.monotonic() + worker.RSYNC_STOP_GRACE

    def kill_orphans(self, wait: bool = False) -> None:
        """SIGKILL the doomed rsync groups whose grace is over; forget the ones gone.

        ``wait``: at the end of the run, keep at it until none is left (bounded by the
        grace), so no rsync of ours writes into the mirror after pdb-sync has exited.
        """
        while self.orphans:
            now = time.monotonic()
            for pgid, deadline in list(self.orphans.items()):
                if not group_alive(pgid):
                    del self.orphans[pgid]
                elif now >= deadline:
                    kill_group(pgid, signal.SIGKILL)
                    del self.orphans[pgid]
            if not wait:
                return
            if self.orphans:
                time.sleep(0.02)

    def unstick_queue(self, last_message_at: float) -> None:
        """Free the queue's write lock if a killed worker died holding it."""
        self.stuck_lock.look(getattr(self.queue, "_wlock", None), last_message_at)

    def close(self) -> None:
        """End the run's processes: doomed rsyncs, then the pool, then the queue."""
        self.kill_orphans(wait=True)
        shut_down(self.pool)
        self.queue.close()
        self.queue.join_thread()


class StuckLockWatch:
    """Tells a queue write lock that a dead worker took with it from one a live worker
    holds for a moment.

    Workers share one lock for writing to the queue's pipe; a worker killed while it
    held it (``kill -9`` during a put) would block every other worker forever. While the
    parent keeps reading, a live worker holds the lock only for the moment a write
    takes, so a lock found held at every look for STUCK_LOCK_SECONDS, with no message
    arriving meanwhile, after a worker died, can only be the dead one's: it is released.
    """

    def __init__(self) -> None:
        self.held_since: float | None = None

    def look(self, lock: Any, last_message_at: float, now: float | None = None) -> None:
        if lock is None:
            return
        now = time.monotonic() if now is None else now
        if lock.acquire(False):
            lock.release()
            self.held_since = None
            return
        if self.held_since is None or last_message_at > self.held_since:
            self.held_since = now  # messages still arrive: a live writer has it
        elif now - self.held_since >= STUCK_LOCK_SECONDS:
            log.warning("a dead worker held the event queue's write lock; releasing it")
            lock.release()
            self.held_since = None


def shut_down(pool: Any) -> None:
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
            kill_process(process.pid, signal.SIGKILL)
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
    closer = threading.Thread(target=_terminate, args=(pool,), name="pool-terminate", daemon=True)
    closer.start()
    closer.join(SHUTDOWN_SECONDS)
    if closer.is_alive():
        log.warning("worker pool did not stop in {}s; killing its workers", SHUTDOWN_SECONDS)
        for child in multiprocessing.active_children():
            kill_process(child.pid, signal.SIGKILL)
        closer.join(SHUTDOWN_SECONDS)


def _terminate(pool: Any) -> None:
    """``Pool.terminate``, for a pool whose task pipe may hold half a message.

    A worker signalled while it read its next task (SIGTERM to the whole process group)
    dies with part of the message read; terminate then drains the pipe from the middle
    of that message and fails (``EOFError`` or an unpickling error) before it wakes the
    pool's own threads. The workers are dead by now, so nothing is lost: the failure is
    logged, and the pool's threads are woken here so that none waits forever.
    """
    try:
        pool.terminate()
    except Exception as error:  # the pool's internals; any failure means the same
        log.debug("worker pool terminate failed on a dead worker's half-read task: {!r}", error)
        with suppress(Exception):  # what terminate did not get to: stop its threads
            pool._result_handler._state = multiprocessing.pool.TERMINATE
        for queue in ("_taskqueue", "_outqueue", "_change_notifier"):
            with suppress(Exception):
                getattr(pool, queue).put(None)


def _free_lock_of_the_dead(lock: Any, look: float) -> None:
    """Release ``lock`` if it stays held for ``look`` seconds: once every worker is dead,
    a lock that no live thread releases within that time can only be a dead worker's."""
    if lock is None:
        return
    if lock.acquire(timeout=look) if look > 0 else lock.acquire(False):
        lock.release()  # free, or briefly held by one of the pool's threads
    else:
        lock.release()
