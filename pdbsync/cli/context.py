"""The process environment a command runs in, swappable in tests (after httpie)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO


@dataclass
class Environment:
    """Where output goes, whether it is a terminal, and the environment variables."""

    stdout: BinaryIO
    stderr: TextIO
    stdout_isatty: bool
    environ: Mapping[str, str] = field(default_factory=dict)
    columns: int = 80  # terminal width, for the live progress line

    @classmethod
    def from_process(cls) -> Environment:
        """The real stdout (our own buffer over fd 1), stderr and os.environ; a closed
        standard stream is first routed to /dev/null (:func:`open_closed_streams`)."""
        open_closed_streams()
        try:
            fd = sys.stdout.fileno()
            stdout: BinaryIO = io.BufferedWriter(io.FileIO(fd, "wb", closefd=False), 1 << 16)
            isatty = os.isatty(fd)
        except (AttributeError, OSError, ValueError):
            stdout, isatty = sys.stdout.buffer, False
        columns = 80
        if isatty:
            with contextlib.suppress(OSError):
                columns = os.get_terminal_size(fd).columns or 80
        return cls(
            stdout=stdout,
            stderr=sys.stderr,
            stdout_isatty=isatty,
            environ=os.environ,
            columns=columns,
        )

    @property
    def color(self) -> bool:
        """Escape codes only on a terminal, and never when NO_COLOR is set."""
        return self.stdout_isatty and not self.environ.get("NO_COLOR")


def open_closed_streams() -> None:
    """Put /dev/null on whichever of fds 0, 1 and 2 is closed (``2>&-``, ``>&-``) or open
    only for reading where a write is due, and give Python a ``sys.stdout``/``sys.stderr``
    for it.

    Why: with fd 2 closed Python's ``sys.stderr`` is None, so the first warning raised
    and the run died silently; with fd 1 closed there was no stdout to render to; and the
    first file pdb-sync opened would take the free number, so its writes to "stderr"
    would land in that file. The run's real outcome is in its exit code and summary.
    """
    import fcntl

    for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:  # EBADF: closed
            flags = None
        if flags is not None and (fd == 0 or flags & os.O_ACCMODE != os.O_RDONLY):
            continue
        null = os.open(os.devnull, mode)  # takes fd itself when fd is the lowest closed one
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        name = ("stdin", "stdout", "stderr")[fd]
        if getattr(sys, name) is None:  # Python found the fd closed at start-up
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115
