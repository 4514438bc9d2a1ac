"""The wwPDB status lists: which weeks a mirror has, what each says, what a span adds up to.

Each weekly release writes ``status/YYYYMMDD/{added,modified,obsolete}.pdb`` (one id a
line) under the data root; ``status/latest/`` is a copy of the newest. Everything here is
pure: the rsync that lists the folders and fetches the files is pdbsync.weekly.fetch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from pdbsync.weekly.layouts import EXTENDED_ID_PATTERN, ID_PATTERN

LISTS = ("added", "modified", "obsolete")
#: Releases are weekly; a dated folder more than this after the previous one means a
#: week the mirror no longer (or never) had.
WEEK = timedelta(days=7)
_DATED = re.compile(r"^(\d{8})/?$")


class ListProblem(Exception):
    """A status list or the folder listing cannot be used; the message says which and why
    (it becomes the run's fallback reason, never an error)."""


class ExtendedIds(ListProblem):
    """A list names an id in the extended ``pdb_`` form, whose files no mirror serves yet."""


def week_date(name: str) -> date:
    """The date of a dated folder's name (``20261125``)."""
    return date(int(name[:4]), int(name[4:6]), int(name[6:8]))


def dated_folders(listing: Iterable[str]) -> list[str]:
    """The ``YYYYMMDD`` folder names in listing lines (``drwx... NAME``, as ``--list-only``),
    oldest first; other entries (``latest``, files) are left out."""
    found = set()
    for line in listing:
        words = line.split()
        if not words or not line.startswith("d"):
            continue
        match = _DATED.match(words[-1])
        if match is None:
            continue
        try:
            week_date(match.group(1))
        except ValueError:
            continue  # 20261399 is not a week
        found.add(match.group(1))
    return sorted(found)


def parse_list(text: str, where: str) -> list[str]:
    """The ids of one status list (blank lines skipped, ids lower-cased); ListProblem for a
    line that is not an id, ExtendedIds for a ``pdb_`` one. ``where`` names the file."""
    ids = []
    extended = []
    for number, raw in enumerate(text.splitlines(), start=1):
        word = raw.strip().lower()
        if not word:
            continue
        if EXTENDED_ID_PATTERN.match(word):
            extended.append(word)
        elif ID_PATTERN.match(word):
            ids.append(word)
        else:
            raise ListProblem(
                f"status list {where} line {number}: {raw.strip()[:40]!r} is not a PDB id"
            )
    if extended:
        raise ExtendedIds(
            f"status list {where} names the extended id {extended[0]!r}, whose files the "
            "mirrors do not serve yet"
        )
    return ids


@dataclass(frozen=True)
class Week:
    """One dated folder's three lists."""

    name: str
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    obsolete: tuple[str, ...] = ()


@dataclass(frozen=True)
class Span:
    """Several weeks applied together: every id any of them names, and the counts.

    ``entries``: each id named, in first-named order; the transfer asks the mirror for
    each one's files as they are now, and the deletes remove what the mirror no longer
    has, so an id modified twice, or added and made obsolete in the span, ends up as the
    mirror has it whatever the order of the weeks.
    """

    weeks: tuple[str, ...] = ()
    entries: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)


def span(weeks: Sequence[Week]) -> Span:
    """The weeks folded into one :class:`Span` (``counts``: ids per list, over the span)."""
    entries: dict[str, None] = {}
    counts = dict.fromkeys(LISTS, 0)
    for week in weeks:
        for kind in LISTS:
            ids = getattr(week, kind)
            counts[kind] += len(ids)
            entries.update(dict.fromkeys(ids))
    return Span(tuple(week.name for week in weeks), tuple(entries), counts)


def weeks_to_apply(folders: Sequence[str], last: str) -> list[str]:
    """The dated folders after ``last`` (the last week applied), oldest first;
    ListProblem naming the first missing week when they do not follow ``last`` a week
    apart (the mirror dropped it, or never had it)."""
    newer = [name for name in folders if name > last]
    previous = week_date(last)
    for name in newer:
        current = week_date(name)
        if current - previous > WEEK:
            missing = (previous + WEEK).strftime("%Y%m%d")
            raise ListProblem(f"week {missing} is missing from the mirror's status/ folders")
        previous = current
    return newer
