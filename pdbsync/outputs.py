"""Files pdb-sync writes: the run summary or plan, the ``--log-file``, config edits.

pdb-sync runs unattended, often as root, so a path it is given may be anything, and
writing to it must never destroy what is there. Each kind of file is written the way
the user who named it means:

- a symlink is followed: its target is written and the link stays a link;
- a regular file, or nothing yet: a temp file in the same directory, fsync, rename, so a
  reader never sees half a file; an existing file keeps its owner and mode (root editing
  a user's config must not hand it to root);
- a FIFO or a character device (``/dev/stdout``, ``/dev/null``): opened and written in
  place, never renamed over (that would turn it into a regular file);
- a directory, a block device or a socket: refused.

A FIFO that nobody reads must not hang an unattended run: opening it is retried for
:data:`FIFO_WAIT_S` seconds, then fails; a write that makes no progress for as long
fails too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import time
from pathlib import Path
from typing import BinaryIO

from pdbsync.errors import ExitCode, PdbSyncError, UsageError

#: Seconds to wait for a reader to open a FIFO, or for a stalled reader to read on.
FIFO_WAIT_S = 5.0
#: Mode of a file pdb-sync creates (an existing file keeps its own).
NEW_FILE_MODE = 0o644

#: File types that are never written, with the words a message uses for them.
_REFUSED = {
    stat.S_IFDIR: "is a directory",
    stat.S_IFBLK: "is a block device",
    stat.S_IFSOCK: "is a socket",
}


class OutputWriteError(PdbSyncError):
    """A file could not be written once the work was done (exit 1, not a usage error)."""

    exit_code = ExitCode.SYNC_FAILED


class _Failure(Exception):
    """Why a write failed, in words; the public functions add the path and error type."""


def real_path(path: Path) -> Path:
    """The file ``path`` names once every symlink is followed (it need not exist).

    Writing there, never at ``path`` itself, keeps a symlink a symlink; a temp file made
    beside the real file is on the same filesystem, so the rename is atomic.
    """
    return Path(os.path.realpath(Path(path).expanduser()))


def _existing(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def check_output_path(path: Path, flag: str) -> None:
    """Raise UsageError (one line naming ``flag``) unless a run could write ``path``.

    Called before anything runs, so a bad ``--summary`` fails in a second with exit 2
    rather than after hours of transfers. It cannot foresee a full disk or /dev/full;
    the write itself reports those.
    """
    shown = f"{flag} {path}"
    target = real_path(path)
    try:
        found = _existing(target)
    except NotADirectoryError:
        found = None  # a parent is a file: named below
    except OSError as exc:
        raise UsageError(f"{shown}: cannot use: {exc.strerror}") from None
    if found is not None:
        kind = stat.S_IFMT(found.st_mode)
        if kind in _REFUSED:
            raise UsageError(f"{shown}: {_REFUSED[kind]}; give the path of a file")
        if kind in (stat.S_IFIFO, stat.S_IFCHR):
            if not os.access(target, os.W_OK):
                raise UsageError(f"{shown}: no write permission")
            return
    # A regular file is replaced by a rename and missing directories are created, so
    # what matters is the nearest directory that exists.
    ancestor = target.parent
    try:
        while not ancestor.exists():
            ancestor = ancestor.parent
    except OSError as exc:
        raise UsageError(f"{shown}: cannot use {ancestor}: {exc.strerror}") from None
    if not ancestor.is_dir():
        raise UsageError(f"{shown}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{shown}: no write permission in {ancestor}")


def write_file(
    path: Path,
    payload: bytes,
    *,
    label: str | None = None,
    like: os.stat_result | None = None,
    error: type[PdbSyncError] = OutputWriteError,
) -> None:
    """Write ``payload`` to ``path`` by the rules in the module docstring.

    ``like``: the owner and mode to give a regular file (a backup takes its original's);
    by default an existing file keeps its own and a new one gets :data:`NEW_FILE_MODE`.
    Failures raise ``error`` with one line, ``LABEL: cannot write: REASON`` (``label``
    defaults to the path).
    """
    shown = label or str(path)
    try:
        target = real_path(path)
        found = _existing(target)
        kind = stat.S_IFMT(found.st_mode) if found is not None else stat.S_IFREG
        if kind in _REFUSED:
            raise _Failure(_REFUSED[kind])
        if kind == stat.S_IFIFO:
            _write_fifo(target, payload)
        elif kind == stat.S_IFCHR:
            _write_device(target, payload)
        else:
            _replace(target, payload, like or found)
    except _Failure as exc:
        raise error(f"{shown}: cannot write: {exc}") from None
    except OSError as exc:
        raise error(f"{shown}: cannot write: {exc.strerror or exc}") from None


def open_for_append(path: Path, flag: str) -> BinaryIO:
    """An unbuffered binary stream appending to ``path`` (the ``--log-file``).

    Same rules as :func:`write_file`, except that a regular file is appended to, not
    replaced. A FIFO is opened without blocking (waiting :data:`FIFO_WAIT_S` for a
    reader) and then switched to blocking writes, as for any log reader such as ``tee``.
    Problems raise UsageError naming ``flag``: this runs before any work starts.
    """
    shown = f"{flag} {path}"
    try:
        target = real_path(path)
        found = _existing(target)
        kind = stat.S_IFMT(found.st_mode) if found is not None else stat.S_IFREG
        if kind in _REFUSED:
            raise _Failure(f"{_REFUSED[kind]}; give the path of a file")
        if kind == stat.S_IFIFO:
            fd = _open_fifo(target)
            os.set_blocking(fd, True)
        elif kind == stat.S_IFCHR:
            fd = os.open(target, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOCTTY | os.O_CLOEXEC
            fd = os.open(target, flags, NEW_FILE_MODE)
    except _Failure as exc:
        raise UsageError(f"{shown}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot open: {exc.strerror or exc}") from None
    return os.fdopen(fd, "wb", buffering=0)


# -- the three ways of writing ------------------------------------------------------------


def _replace(target: Path, payload: bytes, like: os.stat_result | None) -> None:
    """Temp file beside ``target``, owner and mode set before it is visible, fsync, rename."""
    import tempfile  # only here: a run imports this module before rsync starts

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        try:
            _write_all(fd, payload)
            if like is not None:
                _chown(fd, like)  # before chmod: chown clears the setuid/setgid bits
                os.fchmod(fd, stat.S_IMODE(like.st_mode))
            else:
                os.fchmod(fd, NEW_FILE_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_directory(target.parent)


def _chown(fd: int, like: os.stat_result) -> None:
    """Give the file ``like``'s owner and group, as far as we are allowed.

    Root always can. Anyone else can at best keep the group (when they belong to it);
    the file is then theirs, as with any editor that replaces a file by rename.
    """
    if (like.st_uid, like.st_gid) == (os.geteuid(), os.getegid()):
        return
    for uid in (like.st_uid, -1):
        try:
            os.fchown(fd, uid, like.st_gid)
            return
        except PermissionError:
            continue


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a crash right after it must not undo it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_device(target: Path, payload: bytes) -> None:
    """A character device (/dev/null, a terminal, /dev/full) is written in place."""
    fd = os.open(target, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _write_all(fd, payload)
    finally:
        os.close(fd)


def _write_fifo(target: Path, payload: bytes) -> None:
    """A FIFO is written in place, never for longer than its reader lets it progress."""
    fd = _open_fifo(target)
    try:
        poller = select.poll()  # not select(): it fails on descriptors above 1023
        poller.register(fd, select.POLLOUT)
        view = memoryview(payload)
        while view:
            if not poller.poll(FIFO_WAIT_S * 1000):
                raise _Failure(f"the FIFO's reader stopped reading for {FIFO_WAIT_S:g} s")
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue
    finally:
        os.close(fd)


def _open_fifo(target: Path) -> int:
    """Open a FIFO for writing without blocking; retry while no process reads it.

    A blocking open would wait for a reader forever; a non-blocking one fails with
    ENXIO at once, so it is retried every 50 ms for :data:`FIFO_WAIT_S` seconds.
    """
    deadline = time.monotonic() + FIFO_WAIT_S
    while True:
        try:
            return os.open(target, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            if time.monotonic() >= deadline:
                raise _Failure(f"no process read the FIFO within {FIFO_WAIT_S:g} s") from None
            time.sleep(0.05)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]
