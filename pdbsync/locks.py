"""One lock per target destination, so two runs never run rsync into the same tree.

Two pdb-sync runs that share a ``pdb_dir`` (two array tasks given the same targets, a
cron run that overlaps a manual one) would otherwise both transfer everything, race on
the same partial files and report counts that are each half true. Each target's worker
takes an exclusive ``flock`` on ``<dest>.pdb-sync.lock``, a file beside the destination
(in its parent, so inside ``pdb_dir`` and outside the tree rsync mirrors and may
``--delete`` in), before its first rsync starts, and holds it until the target is done.

- The kernel releases a flock when the last descriptor of it is closed, so a run that
  dies however it dies (``kill -9``, the OOM killer, Slurm's SIGKILL) frees its locks;
  there is no stale lock to clean up, and the file itself is never removed (removing a
  lock file others may be waiting on reopens the race).
- rsync inherits the descriptor: while any rsync of the target is still alive (for a
  moment after its worker was killed) the lock stays held.
- The lock is on the path the destination resolved to when the run was planned, so two
  runs that reach one tree through different symlinks still exclude each other.
- The file holds who has it (pid, host, since, Slurm job), so a run that waits can say
  for whom. It is written in place, not by :func:`pdbsync.outputs.write_file`'s rename:
  a lock must stay the same inode. A symlink or anything but a regular file there is
  refused (``O_NOFOLLOW``), as every output of pdb-sync refuses to be redirected.

A run that finds a target locked waits for it (a stop signal ends the wait at once);
with ``--lock-timeout S`` it gives up on that target after S seconds: ``skipped``, with
the holder named in its error. Where no lock file can be created at all (a read-only
parent), the target runs unlocked and rsync reports what it cannot write either.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pdbsync.events import make_event, utc_now

#: The lock file of dest ``D`` is ``D`` + this, in D's parent directory.
LOCK_SUFFIX = ".pdb-sync.lock"
#: How often a waiting run tries the lock again (a stop signal wakes it at once).
POLL_SECONDS = 0.2
#: Mode of a new lock file (readable by all: anyone may ask who holds it).
LOCK_FILE_MODE = 0o644


def lock_path(dest: Path) -> Path:
    """Where the lock of destination ``dest`` lives: beside it, never inside it."""
    return dest.parent / f"{dest.name}{LOCK_SUFFIX}"


@dataclass
class DestLock:
    """An open lock file; :meth:`try_take` takes the flock without blocking."""

    path: Path
    fd: int

    @classmethod
    def open(cls, path: Path) -> DestLock:
        """Open (creating) the lock file; OSError if it cannot be, or is not a regular file."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
        fd = os.open(path, flags, LOCK_FILE_MODE)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return cls(path, fd)

    def try_take(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def write_holder(self, environ: dict[str, str] | None = None) -> None:
        """Say in the file who holds the lock now (best effort: the flock is the lock)."""
        env = os.environ if environ is None else environ
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": utc_now(),
            "slurm_job_id": env.get("SLURM_JOB_ID"),
        }
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, json.dumps(holder).encode() + b"\n", 0)

    def holder(self) -> str | None:
        """Who holds the lock, in words (``pid 4242 on node7 since ...``), if the file says."""
        try:
            data = json.loads(os.pread(self.fd, 4096, 0) or b"null")
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or "pid" not in data:
            return None
        text = f"pid {data['pid']} on {data.get('host') or '?'}"
        if data.get("slurm_job_id"):
            text += f" (Slurm job {data['slurm_job_id']})"
        if data.get("since"):
            text += f" since {data['since']}"
        return text

    def release(self) -> None:
        """Close the file: the kernel drops the flock once rsync's copies are closed too."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass
class Outcome:
    """What trying to take a destination's lock came to."""

    lock: DestLock | None = None  # held (None: not taken)
    status: str | None = None  # "skipped" (timeout) or "cancelled" (stopped while waiting)
    reason: str | None = None  # why, for the target's error


def take(
    dest: Path,
    name: str,
    timeout: float | None,
    stopped: Callable[[], str | None],
    wait: Callable[[float], None],
    emit: Callable[[dict], None],
) -> Outcome:
    """Take the lock of ``dest`` for target ``name``, waiting while another run holds it.

    ``timeout``: give up after this many seconds (None: wait as long as it takes).
    ``stopped``: the stop signal's name once the worker got one (ends the wait).
    ``wait``: sleeps, but returns early on a stop signal. ``emit``: gets one
    ``lock_wait`` event when the wait begins, so a reader sees why nothing happens.
    """
    path = lock_path(dest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = DestLock.open(path)
    except OSError:
        return Outcome()  # no lock possible here: rsync will say what it cannot write
    if lock.try_take():
        lock.write_holder()
        return Outcome(lock)
    holder = lock.holder()
    limit = "" if timeout is None else f" (at most {timeout:g}s, --lock-timeout)"
    emit(
        make_event(
            "lock_wait",
            name,
            f"Waiting for {path}: held by {holder or 'another process'}{limit}",
            lock=str(path),
            holder=holder,
            timeout_s=timeout,
        )
    )
    started = time.monotonic()
    while True:
        signal_name = stopped()
        if signal_name is not None:
            lock.release()
            return Outcome(status="cancelled", reason=f"not started: {signal_name}")
        if lock.try_take():
            lock.write_holder()
            return Outcome(lock)
        waited = time.monotonic() - started
        if timeout is not None and waited >= timeout:
            holder = lock.holder() or holder
            lock.release()
            return Outcome(
                status="skipped",
                reason=(
                    f"not started: {dest} is locked by {holder or 'another process'} "
                    f"(another pdb-sync run); gave up after {timeout:g}s (--lock-timeout)"
                ),
            )
        step = POLL_SECONDS if timeout is None else min(POLL_SECONDS, timeout - waited)
        wait(max(step, 0.0))
