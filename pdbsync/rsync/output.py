"""Reading what rsync prints: ``--info=progress2`` redraws, the closing ``--stats``
block, and ``--itemize-changes`` lines.

Pure parsers of text: the worker (pdbsync.run.worker) feeds them rsync's stdout line by
line (split by :class:`pdbsync.rsync.lines.LineSplitter`), the text renderer asks
:func:`is_final_redraw`. Sizes printed under ``-h``/``-hh`` are read in the base the argv
implies (:func:`pdbsync.rsync.argv.size_base`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

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


def is_final_redraw(progress: Mapping[str, object]) -> bool:
    """Whether a parsed redraw (:func:`parse_progress`) is rsync's last of a transfer:
    nothing left to check, or 100%.

    The one rule for "this redraw must be shown before what follows it": the worker
    sends such a held redraw before the ``--stats`` block, the text renderer prints it
    before the target's next line (a throttle holds ordinary redraws back).
    """
    return progress.get("files_to_check") == 0 or progress.get("percent") == 100


def is_final_redraw_line(line: str) -> bool:
    """:func:`is_final_redraw` of a redraw as rsync printed it.

    For the worker, which holds redraws as text and asks after every output line: a
    line without ``100%`` or ``chk=0/`` cannot be final, so most are not parsed."""
    if "100%" not in line and "chk=0/" not in line:
        return False
    fields = parse_progress(line)
    return fields is not None and is_final_redraw(fields)


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

#: Every field a ``--stats`` block can give (absent ones are left out of the result).
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


# -- --itemize-changes ---------------------------------------------------------------------

#: ``YXcstpoguax path``: Y the update type, X the file type, then nine attribute columns.
_ITEMIZED = re.compile(
    r"^(?P<update>[<>ch.])(?P<kind>[fdLDS])(?P<attrs>[.+?A-Za-z ]{9}) (?P<path>.+)$"
)
_DELETING = re.compile(r"^\*deleting\s+(?P<path>.+)$")


def itemized_path(line: str) -> tuple[str, str] | None:
    """(kind, path) of an itemized line (``>f+++++++++ ab/x.gz``; with ``-ii`` also an
    unchanged ``.f          ab/x.gz``): kind ``f`` file, ``d`` directory, ``L`` symlink
    (its path without `` -> target``), ``D``/``S`` devices and specials; else None."""
    match = _ITEMIZED.match(line)
    if match is None:
        return None
    path = match["path"]
    if match["kind"] == "L":
        path = path.split(" -> ", 1)[0]
    return match["kind"], path


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
    deletion_sample: list[str] = field(default_factory=list)

    def feed(self, line: str) -> bool:
        """Count one stdout line; True if it was an itemized line (and so not output)."""
        match = _ITEMIZED.match(line)
        if match:
            if match["attrs"].startswith("+++"):
                self.created += 1
            elif match["kind"] == "f" and match["update"] in "<>c":
                self.updated += 1
            return True
        match = _DELETING.match(line)
        if match:
            self.deleted += 1
            if len(self.deletion_sample) < DELETION_SAMPLE:
                self.deletion_sample.append(match["path"])
            return True
        return False
