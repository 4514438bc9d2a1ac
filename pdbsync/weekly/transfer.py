"""A weekly run's transfer: the changed entries' files, a few rsync connections in all.

Two steps, run by the worker (pdbsync.run.worker) for a weekly job:

1. :func:`transfer_commands`: every changed entry's files, as ``-R`` source arguments
   ``URL/./ab/name`` (globs for layouts with several files per id, expanded by the
   daemon), batches of :data:`~pdbsync.weekly.fetch.MAX_SOURCES` arguments per
   connection, with the target's own flags (``--delete`` dropped: with file arguments it
   would do nothing; deletes are step 2's), ``--ignore-missing-args`` (an obsolete
   entry's files are gone) and ``-ii`` (every file considered is itemized, changed or
   not: so the batches also say which files the mirror has).
2. :func:`stale_files`: with ``delete`` on, the local files of those entries that the
   mirror no longer has (an obsolete entry, an assembly dropped by a modification).

``--files-from`` would need one connection, but fails with exit 24 against a daemon
module with ``use chroot = no``; include filters cost as much as the full walk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from pdbsync.rsync.argv import RsyncArgv
from pdbsync.weekly.fetch import MAX_SOURCES
from pdbsync.weekly.layouts import Layout

#: rsync flags a weekly transfer never passes on (deletes are done file by file).
_DROPPED = (
    "--delete",
    "--del",
    "--delete-after",
    "--delete-before",
    "--delete-during",
    "--delete-delay",
    "--delete-excluded",
    "--prune-empty-dirs",
    "-m",
)


def source_args(url: str, paths: Iterable[str]) -> list[str]:
    """``URL/./ab/name`` for each path: ``-R`` keeps ``ab/name`` under the dest."""
    base = url.rstrip("/")
    return [f"{base}/./{path}" for path in paths]


def batches(items: Sequence[str], size: int | None = None) -> list[list[str]]:
    """``items`` in runs of ``size`` (default :data:`MAX_SOURCES`), one per connection."""
    size = size or MAX_SOURCES
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def owned(paths: Iterable[str], layout: Layout, entries: Sequence[str]) -> set[str]:
    """Those of ``paths`` (``ab/name``) that are files of ``entries`` in ``layout``."""
    wanted = set(entries)
    found = set()
    for path in paths:
        _ab, _, name = path.partition("/")
        if not name or "/" in name:
            continue
        if any(layout.owns(path, entry) for entry in _candidates(name, wanted)):
            found.add(path)
    return found


def _candidates(name: str, wanted: set[str]) -> list[str]:
    """The ids a file name could belong to: its 4 characters after no prefix, ``r``
    (structure factors) or ``pdb`` (PDB format), those of ``wanted``."""
    found = []
    for start in (0, 1, 3):
        if name[start : start + 4] in wanted:
            found.append(name[start : start + 4])
    return found


def transfer_commands(
    base: RsyncArgv, url: str, layout: Layout, entries: Sequence[str]
) -> list[RsyncArgv]:
    """The rsync command lines that bring ``entries``' files up to date, a batch each.

    ``-ii`` makes rsync name every file it considered, changed or not: together, the
    batches' itemized lines are the files the mirror has for those entries, which is
    what :func:`stale_files` needs (one connection a batch, no separate listing).
    """
    flags = tuple(flag for flag in base.flags if flag not in _DROPPED)
    flags += ("-R", "--ignore-missing-args", "-ii")
    commands = []
    for part in batches([layout.entry_path(entry) for entry in entries]):
        first, *rest = source_args(url, part)
        commands.append(replace(base, source=first, sources=tuple(rest), flags=flags))
    return commands


def stale_files(dest: Path, layout: Layout, entries: Sequence[str], remote: set[str]) -> list[Path]:
    """The local files of ``entries`` under ``dest`` that the mirror does not have.

    A layout of one file an id looks at that file; one of several (a glob) reads each
    hash directory of the entries once (a week touches ~1,000 entries in directories of
    ~200 files each: reading one per entry would cost a second).
    """
    if not layout.glob:  # one file an id: look at it alone
        return sorted(
            dest / path
            for path in (layout.entry_path(entry) for entry in entries)
            if path not in remote and ((dest / path).is_file() or (dest / path).is_symlink())
        )
    by_folder: dict[str, set[str]] = {}
    for entry in entries:
        by_folder.setdefault(entry[1:3], set()).add(entry)
    stale = []
    for ab, wanted in by_folder.items():
        folder = dest / ab
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            candidates = _candidates(name, wanted)  # most names are other entries': cheap out
            if not candidates:
                continue
            relative = f"{ab}/{name}"
            if relative in remote or not any(layout.owns(relative, e) for e in candidates):
                continue
            path = folder / name
            if path.is_symlink() or path.is_file():
                stale.append(path)
    return sorted(stale)


def delete_stale(stale: Sequence[Path]) -> int:
    """Remove ``stale`` files, then their directories if that left them empty (the
    mirror drops an empty hash directory, and a full sync with --delete would too)."""
    removed = 0
    for path in stale:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    for folder in sorted({path.parent for path in stale}):
        with contextlib.suppress(OSError):  # not empty: other entries live there
            folder.rmdir()
    return removed
