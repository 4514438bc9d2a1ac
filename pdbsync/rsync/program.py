"""Everything pdb-sync knows about the rsync program itself.

The argv it runs, what its exit codes mean (and which are worth retrying), and how to
read its ``--info=progress2`` redraws and its ``--stats`` block. Pure functions only:
the worker process runs rsync, this module only knows its language.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pdbsync.errors import EnvironmentProblem

#: rsync 3.1.0 introduced --info=progress2, which progress events are parsed from.
MIN_RSYNC_VERSION = (3, 1, 0)
#: rsync 3.4.0 (January 2025) fixed CVE-2024-12084..12088: before it, a malicious or
#: compromised server (pdb-sync's position: it pulls from public daemons) can attack the
#: client, up to reading and writing files outside the destination.
SAFE_RSYNC_VERSION = (3, 4, 0)
RSYNC_CVES: tuple[tuple[str, str], ...] = (
    ("CVE-2024-12084", "heap overflow in checksum handling"),
    ("CVE-2024-12085", "uninitialised stack memory leak"),
    ("CVE-2024-12086", "a server can read arbitrary client files"),
    ("CVE-2024-12087", "path traversal via --inc-recursive symlinks"),
    ("CVE-2024-12088", "--safe-links bypass"),
)


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


def build_argv(
    rsync: str,
    url: str,
    dest: str,
    flags: Sequence[str] = ("-a",),
    *,
    progress: bool = True,
    plan: bool = False,
) -> list[str]:
    """The exact argv for one transfer: ``rsync FLAGS --info=progress2 --stats URL DEST/``.

    Partial files are the flags' business (``options.build_flags`` passes
    ``--partial-dir`` only while ``partial`` is on), so ``--no-partial`` really means none.

    The source URL is used as written: with a trailing slash rsync copies the contents
    of the remote directory into DEST, without one it creates DEST/<basename>.
    ``plan``: the same transfer as ``--dry-run --itemize-changes`` (changes nothing;
    each line says what would happen to one item), without progress redraws.
    """
    argv = [rsync, *flags]
    if plan:
        argv += ["--dry-run", "--itemize-changes"]
    elif progress:
        argv.append("--info=progress2")
    argv.append("--stats")
    argv += ["--", url, dest.rstrip("/") + "/"]
    return argv


@dataclass(frozen=True)
class RsyncInfo:
    """The rsync that will run: its path, version and the first line of ``--version``."""

    path: str
    version: tuple[int, ...]
    banner: str

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def check_rsync(rsync: str = "rsync") -> tuple[str, tuple[int, ...]]:
    """Find rsync and check it is new enough; returns (path, version)."""
    info = inspect_rsync(rsync)
    return info.path, info.version


@functools.lru_cache(maxsize=8)
def _version_text(path: str, identity: str) -> str:
    """``rsync --version`` of the binary ``path`` is, as ``identity`` (see
    :func:`_identity`) tells it apart: asked once per process (a run checks rsync's age
    and again its security floor), and remembered in the state directory between runs,
    since asking costs every run a fork of pdb-sync and rsync's start before its first
    transfer. Replacing or upgrading rsync changes its identity: it is asked again.
    """
    from pdbsync.store.history import read_cache, write_cache

    remembered = _remembered_version_path()
    cached = read_cache(remembered)
    key, _, text = (cached or "").partition("\n")
    if key == f"{path}\0{identity}":
        return text
    text = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    if cached is not None and re.search(_VERSION, text):  # only an answer worth keeping
        write_cache(remembered, f"{path}\0{identity}\n{text}")
    return text


def _identity(stat: os.stat_result) -> str:
    """What changes when a binary is replaced, upgraded or rewritten in place."""
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def _remembered_version_path() -> Path:
    from pdbsync.store.history import state_dir

    return state_dir() / "rsync-version"


_VERSION = r"version\s+v?(\d+)\.(\d+)\.(\d+)"


def inspect_rsync(rsync: str = "rsync") -> RsyncInfo:
    """Find rsync and check it is new enough for pdb-sync (not whether it is safe: see
    :func:`vulnerability`). EnvironmentProblem (exit 2) when it is missing or too old."""
    path = shutil.which(rsync)
    if path is None:
        raise EnvironmentProblem(
            f"rsync not found on PATH (looked for {rsync!r}); install it, e.g. "
            "'apt-get install rsync'"
        )
    try:
        out = _version_text(path, _identity(os.stat(path)))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"{path}: cannot run rsync --version: {exc}") from None
    match = re.search(_VERSION, out)
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
    banner = next((line.strip() for line in out.splitlines() if line.strip()), "")
    return RsyncInfo(path, version, banner)


#: Said with every finding of a vulnerable rsync (doctor, sync's warning and refusal).
UPGRADE_HELP = (
    "upgrade rsync to 3.4.0 or newer; if your distribution backported the fixes, say so "
    'with [sync] rsync_patched = "VERSION"'
)


def patched_matches(acknowledged: str, version: tuple[int, ...]) -> bool:
    """Whether ``[sync] rsync_patched`` applies to the rsync found.

    rsync's ``--version`` shows only the upstream version (3.2.7), never a distribution's
    revision (3.2.7-1+deb12u1), so the acknowledgement is matched on its upstream part:
    ``"3.2.7-1+deb12u1"`` and ``"3.2.7"`` both cover rsync 3.2.7, and stop applying the
    day another version is installed, which has to be judged anew.
    """
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", acknowledged)
    return bool(match) and tuple(int(p) for p in match[1].split(".")) == version


def vulnerability(version: tuple[int, ...], patched: str | None = None) -> str | None:
    """Why this rsync version is unsafe as a client of untrusted servers, or None.

    None when it is 3.4.0 or newer, or when ``patched`` (``[sync] rsync_patched``)
    acknowledges exactly this version as a patched build.
    """
    if version >= SAFE_RSYNC_VERSION:
        return None
    if patched and patched_matches(patched, version):
        return None
    have = ".".join(map(str, version))
    cves = ", ".join(cve for cve, _what in RSYNC_CVES)
    return (
        f"rsync {have} is older than 3.4.0 and has {cves} (a malicious or compromised "
        "server can attack this client)"
    )


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


# -- human-readable levels --------------------------------------------------------------

#: Short options of rsync that take an argument: in ``-e ssh`` or ``-essh`` the rest of
#: the cluster (or the next word) is that argument, not more options.
_SHORT_WITH_ARG = set("eBfTM")


def human_readable_level(argv: Sequence[str]) -> int:
    """The ``--human-readable`` level an rsync argv asks for (rsync 3.x: default 1).

    Level 0 prints bare digits, 1 adds thousands separators, 2 (``-h``) prints sizes in
    units of 1000 (``114.59K``) and 3 (``-hh``) in units of 1024; counts of files keep
    their separators at every level. Parsers need the level because ``1.23K`` alone does
    not say which base it was printed in.
    """
    level = 1
    words = iter(argv[1:])
    for word in words:
        if word == "--":
            break
        if word == "--human-readable":
            level += 1
        elif word in ("--no-human-readable", "--no-h"):
            level = 0
        elif word.startswith("-") and not word.startswith("--") and len(word) > 1:
            for position, letter in enumerate(word[1:], start=1):
                if letter == "h":
                    level += 1
                elif letter in _SHORT_WITH_ARG:
                    if position == len(word) - 1:
                        next(words, None)  # the option's argument is the next word
                    break
    return level


def size_base(argv: Sequence[str]) -> int:
    """The unit base of the sizes rsync prints with this argv: 1024 for ``-hh``, else 1000."""
    return 1024 if human_readable_level(argv) >= 3 else 1000


def deletes(argv: Sequence[str]) -> bool:
    """Whether this argv makes rsync delete files on the receiving side."""
    for word in argv[1:]:
        if word == "--":
            break
        if word == "--del" or word.startswith("--delete"):
            return True
    return False


# -- progress -----------------------------------------------------------------------------

_PROGRESS = re.compile(
    r"^\s*(?P<bytes>[\d.,]+[KMGTP]?)\s+(?P<percent>\d+)%\s+(?P<rate>[\d.,]+\s?[kKMGTP]?B/s)"
    r"\s+(?P<eta>\d+:\d\d:\d\d)"
    r"(?:\s+\(xfr#(?P<xfr>\d+),\s+(?:ir|to)-chk=(?P<todo>\d+)/(?P<total>\d+)\))?\s*$"
)


def is_progress(line: str) -> bool:
    """Whether ``line`` is an ``--info=progress2`` redraw (cheaper than parsing it)."""
    return _PROGRESS.match(line) is not None


def parse_progress(line: str, base: int = 1000) -> dict[str, object] | None:
    """Fields of one ``--info=progress2`` line, or None if the line is not one.

    ``base`` is the unit base of ``-h`` sizes (see :func:`size_base`).
    """
    match = _PROGRESS.match(line)
    if not match:
        return None
    result: dict[str, object] = {
        "bytes": parse_output_size(match["bytes"], base),
        "percent": int(match["percent"]),
        "rate": match["rate"].replace(" ", ""),
        "eta": match["eta"],
        "files_transferred": int(match["xfr"]) if match["xfr"] else None,
        "files_to_check": int(match["todo"]) if match["todo"] else None,
        "files_total": int(match["total"]) if match["total"] else None,
    }
    return result


# -- --stats ----------------------------------------------------------------------------

_UNITS = {"": 0, "B": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def parse_output_size(text: str, base: int = 1000) -> int:
    """A count or size as rsync prints it: ``1,234,567``, ``1.23M`` or ``5.6G``.

    Suffixed sizes come from ``-h`` (units of 1000, rsync's level 2) or ``-hh`` (units of
    1024, level 3); pass the ``base`` the argv implies (:func:`size_base`). They are
    rounded by rsync to two decimals, so the result is exact only without a suffix.
    The decimal point is ``.`` because the worker runs rsync with ``LC_NUMERIC=C``.
    Not :func:`pdbsync.config.options.parse_size`, which reads sizes written in the config.
    """
    compact = text.strip().replace(",", "").replace(" ", "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTPB]?)(?:bytes)?", compact)
    if not match:
        raise ValueError(f"not an rsync size: {text!r}")
    return round(float(match[1]) * base ** _UNITS[match[2]])


_STATS_LINES = {
    "Number of files": "files_total",
    "Number of created files": "files_created",
    "Number of deleted files": "files_deleted",
    "Number of regular files transferred": "files_transferred",
    "Number of files transferred": "files_transferred",  # rsync 3.0's wording
    "Total file size": "total_size",
    "Total transferred file size": "transferred_size",
    "Literal data": "literal_data",
    "Matched data": "matched_data",
    "File list size": "file_list_size",
    "Total bytes sent": "bytes_sent",
    "Total bytes received": "bytes_received",
}
#: Lines whose total is followed by a breakdown by file type: ``343 (reg: 164, dir: 179)``.
_BY_TYPE = {
    "files_total": "files_total_by_type",
    "files_created": "files_created_by_type",
    "files_deleted": "files_deleted_by_type",
}
_SIZE = r"[\d.,]+[KMGTP]?"
_STATS_LINE = re.compile(
    rf"^(?P<key>[A-Za-z ]+): (?P<value>{_SIZE})(?: bytes)?(?: \((?P<types>[^)]*)\))?\s*$"
)
_SPEEDUP = re.compile(rf"^total size is (?P<size>{_SIZE})\s+speedup is (?P<x>[\d.,]+)")
_SECONDS = re.compile(r"^File list (?P<what>generation|transfer) time: (?P<s>[\d.]+) seconds")
_RATE = re.compile(
    rf"^sent (?P<sent>{_SIZE}) bytes\s+received (?P<received>{_SIZE}) bytes"
    rf"\s+(?P<rate>{_SIZE}) bytes/sec\s*$"
)
_TYPE_NAMES = ("reg", "dir", "link", "dev", "special")

#: Every field parse_stats can produce (absent ones are left out of the result).
STATS_FIELDS = (
    *_STATS_LINES.values(),
    *_BY_TYPE.values(),
    "file_list_generation_s",
    "file_list_transfer_s",
    "bytes_per_second",
    "speedup",
)


def _by_type(text: str) -> dict[str, int]:
    counts = {}
    for part in text.split(", "):
        kind, _, count = part.partition(": ")
        if kind.strip() in _TYPE_NAMES:
            counts[kind.strip()] = parse_output_size(count)
    return counts


#: First letters of every line parse_stats_line understands.
STATS_INITIALS = frozenset("NTLMFst")


def parse_stats_line(line: str, into: dict[str, object], base: int = 1000) -> bool:
    """Add what one ``--stats`` line says to ``into``; True if the line was a stats line.

    ``base`` is the unit base of ``-h`` sizes (:func:`size_base` of the argv).
    """
    if line[:1] not in STATS_INITIALS:  # most lines are file names: skip the regexes
        return False
    match = _STATS_LINE.match(line)
    if match and match["key"] in _STATS_LINES:
        field_name = _STATS_LINES[match["key"]]
        into[field_name] = parse_output_size(match["value"], base)
        if field_name in _BY_TYPE:
            into[_BY_TYPE[field_name]] = _by_type(match["types"] or "")
        return True
    match = _SPEEDUP.match(line)
    if match:
        into["speedup"] = float(match["x"].replace(",", ""))
        return True
    match = _SECONDS.match(line)
    if match:
        into[f"file_list_{match['what']}_s"] = float(match["s"])
        return True
    match = _RATE.match(line)
    if match:
        into["bytes_per_second"] = float(parse_output_size(match["rate"], base))
        return True
    return False


#: Exit codes after which rsync has printed its closing ``--stats`` block: the summary
#: is written when the transfer is over, and 23/24/25 are only decided after it
#: (main.c: output_summary, then exit_cleanup). A refusal (5), a broken connection (10,
#: 12), a timeout (30, 35) or a signal (20) ends rsync before any summary.
STATS_EXIT_CODES = frozenset({0, 23, 24, 25})
#: The first line of every ``--stats`` block rsync prints.
_BLOCK_START = "Number of files: "


class StatsBlock:
    """rsync's closing ``--stats`` block, read one stdout line at a time.

    A daemon's motd reaches the client's stdout before the transfer, and it is the
    server's free text: it can hold lines that read like statistics. rsync's own block
    starts with ``Number of files:`` and is the last thing it prints, so a block counts
    only if nothing but blank lines follows it, and only for an exit code after which
    rsync prints one (:data:`STATS_EXIT_CODES`). Cheap per line: anything that cannot
    start a stats line costs one set lookup while no block is open.
    """

    __slots__ = ("_fields", "base")

    def __init__(self, base: int = 1000) -> None:
        """``base``: the unit base of ``-h`` sizes (:func:`size_base` of the argv)."""
        self.base = base
        self._fields: dict[str, object] | None = None  # None: no block is open

    def feed(self, line: str) -> bool:
        """Read one stdout line; True if it belongs to the block being read."""
        fields = self._fields
        if line[:1] not in STATS_INITIALS:
            if fields is not None and line.strip():
                self._fields = None  # more output after it: not rsync's closing block
            return False
        if line.startswith(_BLOCK_START):
            self._fields = fields = {}
        elif fields is None:
            return False
        if parse_stats_line(line, fields, self.base):
            return True
        self._fields = None
        return False

    @property
    def fields(self) -> dict[str, object]:
        """The fields of the block that ends the lines read so far (empty if none does)."""
        return dict(self._fields) if self._fields is not None else {}

    def result(self, exit_code: int | None) -> dict[str, object]:
        """The block's fields if rsync prints its summary before exiting with ``exit_code``;
        otherwise empty, whatever stats-like text was read (a motd of a failed run)."""
        return self.fields if exit_code in STATS_EXIT_CODES else {}


def parse_stats(lines: Iterable[str], base: int = 1000) -> dict[str, object]:
    """The fields of the ``--stats`` block that ends ``lines`` (see :class:`StatsBlock`).

    Stats-like lines anywhere else (a motd, a file name) are ignored.
    """
    block = StatsBlock(base)
    for line in lines:
        block.feed(line)
    return block.fields


# -- --itemize-changes ---------------------------------------------------------------------

#: ``YXcstpoguax path``: Y the update type, X the file type, then nine attribute columns.
_ITEMIZED = re.compile(
    r"^(?P<update>[<>ch.])(?P<kind>[fdLDS])(?P<attrs>[.+?A-Za-z ]{9}) (?P<path>.+)$"
)
_DELETING = re.compile(r"^\*deleting\s+(?P<path>.+)$")
#: How many paths to be deleted a plan quotes, so a surprise is visible at a glance.
DELETION_SAMPLE = 10


@dataclass
class ItemizedCounts:
    """What ``--itemize-changes`` lines say a transfer does (or, with --dry-run, would do).

    ``created`` counts new items of every kind, like rsync's "Number of created files";
    ``updated`` counts existing regular files whose content changes (with ``created``
    regular files they make rsync's "Number of regular files transferred");
    ``deleted`` counts ``*deleting`` lines (files and directories).
    """

    created: int = 0
    updated: int = 0
    deleted: int = 0
    attributes_only: int = 0
    deletion_sample: list[str] = field(default_factory=list)

    def feed(self, line: str) -> bool:
        """Count one stdout line; True if it was an itemized line (and so not output)."""
        match = _ITEMIZED.match(line)
        if match:
            if match["attrs"].startswith("+++"):
                self.created += 1
            elif match["kind"] == "f" and match["update"] in "<>c":
                self.updated += 1
            else:
                self.attributes_only += 1
            return True
        match = _DELETING.match(line)
        if match:
            self.deleted += 1
            if len(self.deletion_sample) < DELETION_SAMPLE:
                self.deletion_sample.append(match["path"])
            return True
        return False
