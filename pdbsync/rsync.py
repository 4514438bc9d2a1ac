"""Everything pdb-sync knows about the rsync program itself.

The argv it runs, what its exit codes mean (and which are worth retrying), and how to
read its ``--info=progress2`` redraws and its ``--stats`` block. Pure functions only:
the worker process runs rsync, this module only knows its language.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pdbsync.errors import EnvironmentProblem

#: Where interrupted transfers leave partial files (inside each destination directory).
PARTIAL_DIR = ".rsync-partial"
#: rsync 3.1.0 introduced --info=progress2, which progress events are parsed from.
MIN_RSYNC_VERSION = (3, 1, 0)


@dataclass(frozen=True)
class ExitMeaning:
    """What an rsync exit code means, and whether trying again could help."""

    code: int
    meaning: str
    transient: bool


# From `man rsync`, EXIT VALUES. `transient` marks failures of the network or the remote
# side that often pass (a mirror restarting, a connection limit, a dropped link).
_EXIT_TABLE = [
    ExitMeaning(0, "success", False),
    ExitMeaning(1, "syntax or usage error", False),
    ExitMeaning(2, "protocol incompatibility", False),
    ExitMeaning(3, "errors selecting input/output files, directories", False),
    ExitMeaning(4, "requested action not supported", False),
    ExitMeaning(5, "error starting client-server protocol", True),
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
    ExitMeaning(23, "partial transfer due to error", True),
    ExitMeaning(24, "partial transfer due to vanished source files", True),
    ExitMeaning(25, "the --max-delete limit stopped deletions", False),
    ExitMeaning(30, "timeout in data send/receive", True),
    ExitMeaning(35, "timeout waiting for daemon connection", True),
]
EXIT_CODES: dict[int, ExitMeaning] = {entry.code: entry for entry in _EXIT_TABLE}

# Several causes share one exit code; these stderr phrases mark the causes that will not
# pass by themselves (a typo in the module, a full disk), so retrying would only wait.
_PERMANENT_STDERR = (
    "unknown module",
    "auth failed",
    "access denied",
    "no space left on device",
    "read-only file system",
    "permission denied",
    "disk quota exceeded",
)
# ...except these, which say the remote side is busy or restarting.
_TRANSIENT_STDERR = ("max connections", "connection refused", "connection reset")


def exit_meaning(code: int | None) -> str:
    """A short human meaning for an rsync exit code (or a signal, if negative)."""
    if code is None:
        return "did not finish"
    if code < 0:
        return f"killed by signal {-code}"
    entry = EXIT_CODES.get(code)
    return entry.meaning if entry else "unknown rsync exit code"


def is_transient(code: int | None, stderr_lines: Iterable[str] = ()) -> bool:
    """Whether a failure with this exit code and stderr is worth another attempt."""
    if code is None or code <= 0:
        return False
    entry = EXIT_CODES.get(code)
    if entry is None or not entry.transient:
        return False
    text = "\n".join(stderr_lines).lower()
    if any(phrase in text for phrase in _TRANSIENT_STDERR):
        return True
    return not any(phrase in text for phrase in _PERMANENT_STDERR)


def build_argv(
    rsync: str, url: str, dest: str, flags: Sequence[str] = ("-a",), *, progress: bool = True
) -> list[str]:
    """The exact argv for one transfer: ``rsync FLAGS --info=progress2 --stats URL DEST/``.

    Unless the flags name their own, ``--partial-dir=.rsync-partial`` is added so an
    interrupted transfer resumes next time and never leaves a half-written file in place.

    The source URL is used as written: with a trailing slash rsync copies the contents
    of the remote directory into DEST, without one it creates DEST/<basename>.
    """
    argv = [rsync, *flags]
    if not any(flag.startswith("--partial-dir") for flag in flags):
        # An interrupted transfer keeps what it got for the next run, out of the way:
        # never as a half-written file in place of a good one.
        argv.append(f"--partial-dir={PARTIAL_DIR}")
    if progress:
        argv.append("--info=progress2")
    argv.append("--stats")
    argv += ["--", url, dest.rstrip("/") + "/"]
    return argv


def check_rsync(rsync: str = "rsync") -> tuple[str, tuple[int, ...]]:
    """Find rsync and check it is new enough; returns (path, version)."""
    path = shutil.which(rsync)
    if path is None:
        raise EnvironmentProblem(
            f"rsync not found on PATH (looked for {rsync!r}); install it, e.g. "
            "'apt-get install rsync'"
        )
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"{path}: cannot run rsync --version: {exc}") from None
    match = re.search(r"version\s+v?(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise EnvironmentProblem(f"{path}: cannot tell the rsync version from --version")
    version = tuple(int(part) for part in match.groups())
    if version < MIN_RSYNC_VERSION:
        need = ".".join(map(str, MIN_RSYNC_VERSION))
        have = ".".join(map(str, version))
        raise EnvironmentProblem(
            f"{path}: rsync {have} is too old; pdb-sync needs {need} or newer "
            "(for --info=progress2)"
        )
    return path, version


# -- progress -----------------------------------------------------------------------------

_PROGRESS = re.compile(
    r"^\s*(?P<bytes>[\d.,]+[KMGTP]?)\s+(?P<percent>\d+)%\s+(?P<rate>[\d.,]+\s?[kKMGTP]?B/s)"
    r"\s+(?P<eta>\d+:\d\d:\d\d)"
    r"(?:\s+\(xfr#(?P<xfr>\d+),\s+(?:ir|to)-chk=(?P<todo>\d+)/(?P<total>\d+)\))?\s*$"
)


def parse_progress(line: str) -> dict[str, object] | None:
    """Fields of one ``--info=progress2`` line, or None if the line is not one."""
    match = _PROGRESS.match(line)
    if not match:
        return None
    result: dict[str, object] = {
        "bytes": parse_size(match["bytes"]),
        "percent": int(match["percent"]),
        "rate": match["rate"].replace(" ", ""),
        "eta": match["eta"],
        "files_transferred": int(match["xfr"]) if match["xfr"] else None,
        "files_to_check": int(match["todo"]) if match["todo"] else None,
        "files_total": int(match["total"]) if match["total"] else None,
    }
    return result


# -- --stats ----------------------------------------------------------------------------

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def parse_size(text: str) -> int:
    """A count or size as rsync prints it: ``1,234,567``, ``1.23M`` or ``5.6G``.

    rsync's human-readable suffixes are powers of 1024 unless ``--si`` is used, which
    pdb-sync never passes.
    """
    text = text.strip().replace(",", "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTPB]?)(?:bytes)?", text.replace(" ", ""))
    if not match:
        raise ValueError(f"not an rsync size: {text!r}")
    return round(float(match[1]) * _UNITS[match[2]])


_STATS_LINES = {
    "Number of files": "files_total",
    "Number of created files": "files_created",
    "Number of deleted files": "files_deleted",
    "Number of regular files transferred": "files_transferred",
    "Total file size": "total_size",
    "Total transferred file size": "transferred_size",
    "Literal data": "literal_data",
    "Matched data": "matched_data",
    "File list size": "file_list_size",
    "Total bytes sent": "bytes_sent",
    "Total bytes received": "bytes_received",
}
_STATS_LINE = re.compile(r"^(?P<key>[A-Za-z ]+): (?P<value>[\d.,]+[KMGTP]?)(?: bytes)?\b")
_SPEEDUP = re.compile(r"^total size is (?P<size>[\d.,]+[KMGTP]?)\s+speedup is (?P<x>[\d.,]+)")
_SECONDS = re.compile(r"^File list (?P<what>generation|transfer) time: (?P<s>[\d.]+) seconds")

#: Every field parse_stats can produce (absent ones stay None in the summary).
STATS_FIELDS = (*_STATS_LINES.values(), "speedup")


def parse_stats_line(line: str, into: dict[str, object]) -> bool:
    """Add what one ``--stats`` line says to ``into``; True if the line was a stats line."""
    match = _STATS_LINE.match(line)
    if match and match["key"] in _STATS_LINES:
        into[_STATS_LINES[match["key"]]] = parse_size(match["value"])
        return True
    match = _SPEEDUP.match(line)
    if match:
        into["speedup"] = float(match["x"].replace(",", ""))
        return True
    return bool(_SECONDS.match(line))


def parse_stats(lines: Iterable[str]) -> dict[str, object]:
    """The ``--stats`` fields found in ``lines`` (any other lines are ignored)."""
    stats: dict[str, object] = {}
    for line in lines:
        parse_stats_line(line, stats)
    return stats
