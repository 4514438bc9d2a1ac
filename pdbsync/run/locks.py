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
  a lock must stay the same inode.

A run that finds a target locked waits for it (a stop signal ends the wait at once);
with ``--lock-timeout S`` it gives up on that target after S seconds: ``skipped``, with
the holder named in its error.

The lock fails closed. :func:`preflight` looks at every lock file a sync will take
before anything runs: a directory, FIFO, socket, device or symlink (to anything, even a
regular file: a link can be re-pointed between two runs' opens, so they would lock
different files) where the lock file goes is refused, exit 2, nothing written. Where
the file system cannot lock at all (``flock`` fails with ENOLCK or EOPNOTSUPP, as on
an NFS mount without lockd) or there is no lock file and none can be created (a
read-only parent), the preflight marks those jobs ``unlocked`` and the run says so
once, in one ``warning`` event; they run unlocked, as a run on such a file system
always has. A lock file that exists but cannot be opened (another user's, mode 0600)
is refused, exit 2: another user's run may hold it right now. Whatever goes wrong
later, in the worker (a symlink swapped in since the preflight, lock support gone),
fails that target instead: a worker never runs rsync unlocked on its own.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdbsync.errors import EnvironmentProblem
from pdbsync.events import make_event, utc_now
from pdbsync.paths import lock_path

if TYPE_CHECKING:
    from pdbsync.run.jobs import Job

#: How often a waiting run tries the lock again (a stop signal wakes it at once).
POLL_SECONDS = 0.2
#: Mode of a new lock file, set explicitly (not left to the umask: under ``umask 077``
#: it would be 0600, and another user's run could not open it, so could not lock it).
#: Readable by all is what ``flock`` needs (it works on a read-only descriptor); only
#: the owner writes the holder line, which is informational: the flock is the lock.
LOCK_FILE_MODE = 0o644
#: ``open`` errors on an existing lock file after which it is opened read-only instead.
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: ``flock`` errors that mean the file system cannot lock at all (an NFS mount without
#: lockd, some FUSE file systems), as opposed to "another process holds it".
NO_LOCK_SUPPORT = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP})
#: Flags every open of a lock file uses: never follow a symlink, never block on a FIFO,
#: never become a controlling terminal, never leak into a child but rsync.
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK


class LockRefused(EnvironmentProblem):
    """Something other than a regular file sits where a dest's lock file goes."""


def refusal(path: Path) -> str | None:
    """Why ``path`` cannot serve as a lock file, in words (``is a directory``), or None
    when it is absent or a regular file. A symlink is refused whatever it points to:
    two runs opening it a moment apart could lock two different files."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None  # absent (or unreachable: opening it says why)
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        try:
            return f"is a symlink (to {os.readlink(path)})"
        except OSError:
            return "is a symlink"
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    kind = next((words for test, words in kinds if test(mode)), "not a regular file")
    return f"is {kind}"


def refused_message(name: str, path: Path, why: str) -> str:
    """The one line that refuses target ``name`` because of what is at its lock path."""
    what = why if "regular file" in why else f"{why}, not a regular file"
    return (
        f"target {name!r}: its lock file {path} {what}; pdb-sync will not sync a dest it "
        "cannot lock: move it away, pdb-sync creates the lock file itself"
    )


@dataclass
class DestLock:
    """An open lock file; :meth:`try_take` takes the flock without blocking."""

    path: Path
    fd: int

    @classmethod
    def open(cls, path: Path, name: str = "") -> DestLock:
        """Open (creating) the lock file of target ``name``: LockRefused if anything but a
        regular file is there (checked on the open descriptor too, so nothing swapped in
        after a look is followed), OSError if it cannot be opened.

        A lock file another user created (0644) is opened read-only: ``flock`` needs no
        more, and two users' runs on one shared dest still exclude each other. A new one
        gets :data:`LOCK_FILE_MODE` whatever the umask, so the next user can do that."""
        try:
            fd = _open_fd(path)
        except OSError:
            why = refusal(path)
            if why is not None:
                raise LockRefused(refused_message(name, path, why)) from None
            raise
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise LockRefused(refused_message(name, path, refusal(path) or "is not a regular file"))
        return cls(path, fd)

    def try_take(self, shared: bool = False) -> bool:
        """Take the flock without waiting; False if another process holds it. OSError if
        the file system cannot lock (errno in :data:`NO_LOCK_SUPPORT`) or fails."""
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def write_holder(self, environ: dict[str, str] | None = None) -> None:
        """Say in the file who holds the lock now (best effort: the flock is the lock)."""
        env = os.environ if environ is None else environ
        holder = {
            "pid": os.getpid(),
            "host": os.uname().nodename,
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


def _open_fd(path: Path) -> int:
    """A descriptor of the lock file at ``path``, creating it (mode :data:`LOCK_FILE_MODE`)
    if there is none; read-only when it exists but is not writable to us. OSError as
    ``open`` gives it (FileNotFoundError: no file, and none can be created here)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, LOCK_FILE_MODE)
    except FileExistsError:
        pass  # anything may be there (checked by the caller): open what is
    except PermissionError:
        if not os.path.lexists(path):
            raise  # none, and none can be created here
    else:
        with contextlib.suppress(OSError):  # a file system without modes keeps its own
            os.fchmod(fd, LOCK_FILE_MODE)
        return fd
    try:
        return os.open(path, os.O_RDWR | _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno not in _NOT_WRITABLE:
            raise
    return os.open(path, os.O_RDONLY | _OPEN_FLAGS)


@dataclass
class Outcome:
    """What trying to take a destination's lock came to."""

    lock: DestLock | None = None  # held (None: not taken)
    #: "skipped" (timeout), "cancelled" (stopped while waiting) or "failed" (no lock
    #: could be taken: refused, or the file system failed)
    status: str | None = None
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

    ``timeout``: give up after this many seconds (None: wait as long as it takes), but
    never before one more try after :data:`POLL_SECONDS`: another run's
    :func:`preflight` holds each lock for an instant, and a run with ``timeout`` 0 that
    met that instant would otherwise skip a target nobody was syncing.
    ``stopped``: the stop signal's name once the worker got one (ends the wait).
    ``wait``: sleeps, but returns early on a stop signal. ``emit``: gets one
    ``lock_wait`` event when the wait begins, so a reader sees why nothing happens.
    """
    path = lock_path(dest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = DestLock.open(path, name)
    except LockRefused as exc:
        return Outcome(status="failed", reason=f"not started: {exc.message}")
    except OSError as exc:
        return Outcome(status="failed", reason=f"not started: {_cannot_lock(path, exc)}")
    limit = None if timeout is None else max(timeout, POLL_SECONDS)
    holder = None
    started = None
    while True:
        try:
            taken = lock.try_take()
        except OSError as exc:
            lock.release()
            return Outcome(status="failed", reason=f"not started: {_cannot_lock(path, exc)}")
        if taken:
            lock.write_holder()
            return Outcome(lock)
        holder = lock.holder() or holder
        if started is None:
            started = time.monotonic()
            emit(_wait_event(name, path, holder, timeout))
        waited = time.monotonic() - started
        if limit is not None and waited >= limit:
            lock.release()
            return Outcome(
                status="skipped",
                reason=(
                    f"not started: {dest} is locked by {holder or 'another process'} "
                    f"(another pdb-sync run); gave up after {timeout:g}s (--lock-timeout)"
                ),
            )
        wait(POLL_SECONDS if limit is None else min(POLL_SECONDS, limit - waited))
        signal_name = stopped()
        if signal_name is not None:
            lock.release()
            return Outcome(status="cancelled", reason=f"not started: {signal_name}")


def _wait_event(name: str, path: Path, holder: str | None, timeout: float | None) -> dict:
    """The ``lock_wait`` event: whom target ``name`` waits for, and for how long at most."""
    limit = "" if timeout is None else f" (at most {timeout:g}s, --lock-timeout)"
    return make_event(
        "lock_wait",
        name,
        f"Waiting for {path}: held by {holder or 'another process'}{limit}",
        lock=str(path),
        holder=holder,
        timeout_s=timeout,
    )


def _cannot_lock(path: Path, exc: OSError) -> str:
    """A worker's reason for not starting a target whose lock it could not take: the
    preflight found this lock usable, so the file system changed during the run."""
    return (
        f"cannot lock {path}: {exc.strerror or exc}; pdb-sync does not run rsync into a "
        "dest it cannot lock (it was lockable when the run started)"
    )


def preflight(jobs: Sequence[Job]) -> tuple[list[Job], list[dict[str, Any]]]:
    """Check every lock file a sync of ``jobs`` will take, before anything runs; the
    jobs (those that will run unlocked marked ``unlocked``) and the warning for them.

    LockRefused (exit 2) naming the target, the lock path and what is there, if any
    lock path holds anything but a regular file; that is checked for every job before
    anything is created, so a refused run writes nothing. Then each lock file is opened
    (created, with its parent, as the worker would) and tried with a shared flock that
    is let go at once: where that fails because the file system cannot lock
    (:data:`NO_LOCK_SUPPORT`) or there is no file and none can be created, the job
    runs unlocked, and one ``warning`` event for the whole run names those targets. A
    lock file that exists but cannot be opened, or any other flock failure (EIO, ...),
    is refused too. A plan takes no lock and is not checked.

    The probe is a shared lock for an instant: another run trying the lock in that
    instant sees it held, and :func:`take` (which split's lock goes through too) tries
    again after :data:`POLL_SECONDS` before it gives up, even with ``timeout`` 0, so the
    probe never changes another run's outcome.
    A split target's parts share their target's one job here, and a shard's run checks
    only its own jobs: every entry point of a sync goes through this one function
    (:func:`pdbsync.api.sync`).
    """
    locked = [job for job in jobs if not job.plan]
    paths = {job.key: lock_path(job.resolved_dest or job.dest) for job in locked}
    for job in locked:
        why = refusal(paths[job.key])
        if why is not None:
            raise LockRefused(refused_message(job.name, paths[job.key], why))
    problems: dict[Path, str] = {}
    for job in locked:
        path = paths[job.key]
        if path not in problems:
            problems[path] = _probe(path, job.name) or ""
    unlocked = [job for job in locked if problems[paths[job.key]]]
    if not unlocked:
        return list(jobs), []
    marks = {job.key: problems[paths[job.key]] for job in unlocked}
    jobs = [replace(job, unlocked=marks[job.key]) if job.key in marks else job for job in jobs]
    warning = unlocked_warning([(job.name, paths[job.key], marks[job.key]) for job in unlocked])
    return jobs, [warning]


def _probe(path: Path, name: str) -> str | None:
    """Why no lock can be taken at ``path`` (the job then runs unlocked), or None when
    flock works there (free, or held by another run). LockRefused if it cannot tell.

    Only two things mean "unlocked": the file system cannot lock
    (:data:`NO_LOCK_SUPPORT`), or there is no lock file and none can be created. A lock
    file that is there but cannot be opened (another user's, made under ``umask 077``)
    is refused: that user's run may hold it now, and the two would write one dest."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = DestLock.open(path, name)
    except LockRefused:
        raise
    except OSError as exc:
        if _absent(path):
            return f"cannot create the lock file: {exc.strerror or exc}"
        raise LockRefused(
            f"target {name!r}: cannot open its lock file {path}: {exc.strerror or exc}; "
            "another user's run may hold it, and pdb-sync will not sync a dest it cannot "
            "lock: make the file readable to you (its owner can chmod 644 it)"
        ) from None
    try:
        lock.try_take(shared=True)
    except OSError as exc:
        if exc.errno in NO_LOCK_SUPPORT:
            return f"flock: {exc.strerror or exc}"
        raise LockRefused(
            f"target {name!r}: cannot lock {path}: {exc.strerror or exc}; pdb-sync will "
            "not sync a dest it cannot lock"
        ) from None
    finally:
        lock.release()
    return None


def _absent(path: Path) -> bool:
    """Whether nothing is at ``path`` (so nobody can hold a lock on it)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False  # cannot even look: it may be there
    return False


def unlocked_warning(unlocked: Sequence[tuple[str, Path, str]]) -> dict[str, Any]:
    """The run's one ``warning`` event for the targets that run without their lock:
    (target, lock path, why) each; grouped by directory and reason, so a whole NFS
    ``pdb_dir`` reads as one line."""
    groups: dict[tuple[Path, str], list[str]] = {}
    for name, path, why in unlocked:
        groups.setdefault((path.parent, why), []).append(name)
    where = "; ".join(
        f"{', '.join(names)} in {directory} ({why})" for (directory, why), names in groups.items()
    )
    they = "they run" if len(unlocked) > 1 else "it runs"
    return make_event(
        "warning",
        None,
        f"no dest lock for {where}: {they} unlocked, and another pdb-sync run on the same "
        "dest at the same time is not kept out",
        code="unlocked",
        targets=[name for name, _path, _why in unlocked],
        locks=[str(path) for _name, path, _why in unlocked],
    )
