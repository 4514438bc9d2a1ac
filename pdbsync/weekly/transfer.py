"""A weekly run's transfer: the changed entries' files, a few rsync connections in all.

Three steps, run by the worker (pdbsync.run.worker) for a weekly job:

1. :func:`listing_commands`: which of the entries' files the mirror has now, asked with
   ``-R`` source arguments ``URL/./ab/name`` (globs for layouts with several files per
   id, expanded by the daemon) in a ``--dry-run`` into an empty directory, batches of
   :data:`~pdbsync.weekly.fetch.MAX_SOURCES` arguments per connection.
2. :func:`transfer_commands`: those files, as the same kind of ``-R`` arguments, with
   the target's own flags (``--delete`` dropped: with file arguments it would do
   nothing; obsolete files are step 3's) and ``--ignore-missing-args`` (a file the
   mirror removed since step 1 is not an error).
3. :func:`stale_files`: with ``delete`` on, the local files of those entries that the
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
from pdbsync.weekly.fetch import IO_TIMEOUT_S, MAX_SOURCES
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


def listing_commands(
    program: str, url: str, layout: Layout, entries: Sequence[str], empty: str
) -> list[list[str]]:
    """The rsync command lines that list which of ``entries``' files the mirror has
    (a ``--dry-run`` into the empty directory ``empty``: every file is "new" there)."""
    wanted = [layout.entry_path(entry) for entry in entries]
    return [
        [
            program,
            "-rR",
            "--dry-run",
            "--ignore-missing-args",
            "--out-format=%n",
            f"--timeout={IO_TIMEOUT_S}",
            "--",
            *source_args(url, part),
            empty.rstrip("/") + "/",
        ]
        for part in batches(wanted)
    ]


def listed_files(stdout: str, layout: Layout, entries: Sequence[str]) -> set[str]:
    """The entries' files (``ab/name``) in a listing's output (directories left out)."""
    wanted = set(entries)
    found = set()
    for line in stdout.splitlines():
        if not line or line.endswith("/") or "/" not in line:
            continue
        name = line.rsplit("/", 1)[1]
        if any(layout.owns(line, entry) for entry in _candidates(name, wanted)):
            found.add(line)
    return found


def _candidates(name: str, wanted: set[str]) -> list[str]:
    """The ids a file name could belong to (the 4 characters after an optional prefix)."""
    return [name[i : i + 4] for i in (0, 1, 3) if name[i : i + 4] in wanted]


def transfer_commands(base: RsyncArgv, url: str, files: Iterable[str]) -> list[RsyncArgv]:
    """The rsync command lines that fetch ``files`` (``ab/name``), a batch each."""
    flags = tuple(flag for flag in base.flags if flag not in _DROPPED)
    flags += ("-R", "--ignore-missing-args")
    commands = []
    for part in batches(sorted(files)):
        first, *rest = source_args(url, part)
        commands.append(replace(base, source=first, sources=tuple(rest), flags=flags))
    return commands


def stale_files(dest: Path, layout: Layout, entries: Sequence[str], remote: set[str]) -> list[Path]:
    """The local files of ``entries`` under ``dest`` that the mirror does not have."""
    stale = []
    for entry in entries:
        folder = dest / entry[1:3]
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            relative = f"{entry[1:3]}/{name}"
            path = folder / name
            if (
                layout.owns(relative, entry)
                and relative not in remote
                and (path.is_file() or path.is_symlink())
            ):
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
