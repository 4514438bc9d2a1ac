"""What rsync's exit codes mean, which failures are worth another attempt, and which
stderr line says why a transfer failed.

Pure functions of an exit code and the stderr lines the worker kept: the worker
(pdbsync.run.worker) decides retries, mirror fallbacks and a result's ``error`` with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ExitMeaning:
    """What an rsync exit code means, and whether trying again could help."""

    code: int
    meaning: str
    transient: bool


# From `man rsync`, EXIT VALUES. `transient` marks the codes whose meaning is a hiccup of
# the network or the remote side (a dropped link, a stalled or restarting mirror), which
# often passes by itself. Whether to retry is decided from these meanings, not from words
# in stderr: "Connection reset by peer" also follows a missing source path (exit 23),
# because the daemon hangs up after refusing it.
_EXIT_TABLE = [
    ExitMeaning(0, "success", False),
    ExitMeaning(1, "syntax or usage error", False),
    ExitMeaning(2, "protocol incompatibility", False),
    ExitMeaning(3, "errors selecting input/output files, directories", False),
    ExitMeaning(4, "requested action not supported", False),
    # Unknown module, auth failed, access denied, pre-xfer exec refusal... and a busy
    # daemon: only that last one passes (see _BUSY_DAEMON).
    ExitMeaning(5, "error starting client-server protocol", False),
    ExitMeaning(6, "daemon unable to append to log-file", False),
    ExitMeaning(10, "error in socket I/O", True),
    ExitMeaning(11, "error in file I/O", False),
    ExitMeaning(12, "error in rsync protocol data stream", True),
    ExitMeaning(13, "errors with program diagnostics", False),
    ExitMeaning(14, "error in IPC code", False),
    ExitMeaning(15, "sibling process crashed", False),
    ExitMeaning(16, "sibling process was killed by a signal", False),
    ExitMeaning(19, "received SIGUSR1", False),
    ExitMeaning(20, "received SIGINT, SIGTERM, or SIGHUP", False),
    ExitMeaning(21, "some error returned by waitpid()", False),
    ExitMeaning(22, "error allocating core memory buffers", False),
    # A missing source path, an unreadable file, a failed mkdir: the same next time.
    ExitMeaning(23, "partial transfer due to error", False),
    ExitMeaning(24, "partial transfer due to vanished source files", True),
    ExitMeaning(25, "the --max-delete limit stopped deletions", False),
    ExitMeaning(30, "timeout in data send/receive", True),
    ExitMeaning(35, "timeout waiting for daemon connection", True),
]
EXIT_CODES: dict[int, ExitMeaning] = {entry.code: entry for entry in _EXIT_TABLE}

#: The one exit-5 cause that passes: the daemon's own "max connections (N) reached --
#: try again later" (clientserver.c). Matched exactly, so no other text can make 5 retry.
_BUSY_DAEMON = re.compile(r"@ERROR: max connections \(\d+\) reached -- try again later")
#: Local causes that no retry cures, whatever code rsync chose for them (a full disk
#: shows up as 11, 12 or 23): these phrases veto a retry.
_PERMANENT_STDERR = (
    "no space left on device",
    "read-only file system",
    "permission denied",
    "quota exceeded",
)


def exit_meaning(code: int | None) -> str:
    """A short human meaning for an rsync exit code (or a signal, if negative)."""
    if code is None:
        return "did not finish"
    if code < 0:
        return f"killed by signal {-code}"
    entry = EXIT_CODES.get(code)
    return entry.meaning if entry else "unknown rsync exit code"


def is_transient(code: int | None, stderr_lines: Iterable[str] = ()) -> bool:
    """Whether a failure with this exit code and stderr is worth another attempt.

    The code's meaning decides (see the table); stderr can only say no (a full disk, a
    read-only or forbidden destination), except for exit 5, which is retried only when
    the daemon said it was busy.
    """
    if code is None or code <= 0:
        return False
    text = "\n".join(stderr_lines)
    lowered = text.lower()
    if any(cause in lowered for cause in _PERMANENT_STDERR):
        return False
    if code == 5:
        return _BUSY_DAEMON.search(text) is not None
    entry = EXIT_CODES.get(code)
    return entry is not None and entry.transient


#: stderr of a connection that never got going: the daemon is not there (or not
#: answering), as opposed to a failure the same on every mirror.
_CONNECT_FAILED = re.compile(
    r"failed to connect to|getaddrinfo|Name or service not known|"
    r"Temporary failure in name resolution|No route to host|Network is unreachable"
)


def is_connection_failure(code: int | None, stderr_lines: Iterable[str] = ()) -> bool:
    """Whether rsync failed because it could not connect to the daemon at all.

    Exit 35 (timeout waiting for the daemon), or exit 10 (socket I/O) whose stderr says
    the connection was never made. Used to move an ``auto`` target to its next mirror.
    """
    if code == 35:
        return True
    if code != 10:
        return False
    return any(_CONNECT_FAILED.search(line) for line in stderr_lines)


def failure_reason(stderr_lines: Iterable[str]) -> str | None:
    """The stderr line that says why rsync failed.

    rsync's closing ``rsync error: ... (code N)`` only repeats the exit code and
    ``*** Skipping ...`` notes are consequences; the cause is an ``@ERROR:`` line from
    the daemon or an ``rsync: ...`` line (``mkdir ... failed: Read-only file system``).
    The first cause wins: later ones are usually its echoes.
    """
    lines = [line.strip() for line in stderr_lines if line.strip()]
    for prefixes in (("@ERROR",), ("rsync:", "rsync(")):
        causes = [line for line in lines if line.startswith(prefixes)]
        if causes:
            return causes[0]
    other = [line for line in lines if not line.startswith(("rsync error:", "***"))]
    if other:
        return other[-1]
    return lines[-1] if lines else None
