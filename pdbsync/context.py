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
        """The real stdout (our own buffer over fd 1), stderr and os.environ."""
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
