"""A weekly run's transfer: the changed entries' files, a few rsync connections in all.

Two steps, run by the worker (pdbsync.run.worker) for a weekly job:

1. :func:`transfer_commands`: every changed entry's files, as ``-R`` source arguments
   ``URL/./ab/name`` (globs for layouts with several files per id, expanded by the
   daemon), with the target's own flags (``--delete`` dropped: with file arguments it
   would do nothing; deletes are step 2's), ``--ignore-missing-args`` (an obsolete
   entry's files are gone) and ``-ii`` (every file considered is itemized, changed or
   not: so the batches also say which files the mirror has). Against a daemon the
   paths are packed many to an argument (:func:`packed_sources`): usually one
   connection for a whole week; otherwise batches of
   :data:`~pdbsync.weekly.fetch.MAX_SOURCES` arguments, one connection each.
2. :func:`stale_files`: with ``delete`` on, the local files of those entries that the
   mirror no longer has (an obsolete entry, an assembly dropped by a modification).

``--files-from`` would need one connection, but fails with exit 24 against a daemon
module with ``use chroot = no``; include filters cost as much as the full walk.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from pdbsync.rsync import url as rsync_url
from pdbsync.rsync.argv import RsyncArgv
from pdbsync.weekly.fetch import MAX_SOURCES, latency_flags
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


#: Bytes of one packed source argument. The daemon reads each argument into a line of
#: 5,120 bytes (rsync.h: ``BIGPATHBUFLEN``, on every platform) and silently drops what
#: does not fit: a name cut there would read as a file the mirror does not have, and
#: the entry's local file as stale. Less than half of that line leaves a wide margin
#: (tests/test_weekly.py checks the real daemon against twice this).
PACKED_ARG_BYTES = 2000
#: rsync learned ``--old-args`` (send arguments as written) in 3.2.4; an older client
#: may protect its arguments (RSYNC_PROTECT_ARGS) and nothing on its command line says so.
OLD_ARGS_VERSION = (3, 2, 4)
#: Characters that would make the daemon's reading of a packed argument, or of the
#: options ``--old-args`` sends as written, differ from what pdb-sync meant.
_UNSAFE = re.compile(r"[\s\\'\"]")
#: rsync options that send the arguments through the protocol, never split by the daemon.
_PROTECTING = ("--protect-args", "--secluded-args")


def packed_sources(url: str, paths: Sequence[str]) -> list[str] | None:
    """``paths`` as few source arguments as the daemon takes, or None where it cannot.

    An rsync daemon splits a source argument at every `` MODULE/`` (rsync's
    ``glob_expand_module``; the man page's "older versions of rsync" form ``host::'mod/a
    mod/b'``) unless the client protects its arguments: so ``URL/./ab/f1 mod/path/./ab/f2
    ...`` in one argument names both files, and a week of ~1,000 entries fits one
    connection (one argument a file costs the daemon more per argument, and rsync
    accepts fewer than a thousand arguments a connection). Only for a daemon URL whose
    paths hold no space, quote or backslash; each argument stays under
    :data:`PACKED_ARG_BYTES`.
    """
    parsed = rsync_url.daemon(url)
    if parsed is None:
        return None
    base = url.rstrip("/")
    inside = parsed.path.rstrip("/")  # the module and the path in it, as the daemon sees it
    if not inside or any(_UNSAFE.search(text) or not text.isascii() for text in (base, *paths)):
        return None  # non-ASCII: characters are not bytes, and the daemon's line is bytes
    packed: list[str] = []
    current = ""
    for path in paths:
        piece = f"{inside}/./{path}"
        if current and len(current) + 1 + len(piece) <= PACKED_ARG_BYTES:
            current += " " + piece
            continue
        if current:
            packed.append(current)
        current = f"{base}/./{path}"
        if len(current) > PACKED_ARG_BYTES:
            return None
    if current:
        packed.append(current)
    return packed


def may_pack(flags: Sequence[str], version: tuple[int, ...] | None) -> bool:
    """Whether a transfer with ``flags`` by an rsync of ``version`` may pack its sources:
    ``--old-args`` known (3.2.4+), no option that protects the arguments (``-s``), and no
    option value that ``--old-args`` would send differently (a space, quote, backslash)."""
    if version is None or version < OLD_ARGS_VERSION:
        return False
    for flag in flags:
        if _UNSAFE.search(flag) or flag.startswith(_PROTECTING):
            return False
        if flag.startswith("-") and not flag.startswith("--") and "s" in flag[1:]:
            return False  # -s, or a cluster holding it (-avs)
    return True


def packs(commands: Sequence[RsyncArgv]) -> bool:
    """Whether ``commands`` (of :func:`transfer_commands`) pack several paths an argument."""
    return any("--old-args" in command.flags for command in commands)


def transfer_commands(
    base: RsyncArgv,
    url: str,
    layout: Layout,
    entries: Sequence[str],
    version: tuple[int, ...] | None = None,
) -> list[RsyncArgv]:
    """The rsync command lines that bring ``entries``' files up to date, a batch each.

    ``-ii`` makes rsync name every file it considered, changed or not: together, the
    batches' itemized lines are the files the mirror has for those entries, which is
    what :func:`stale_files` needs (one connection a batch, no separate listing).
    ``version``: the rsync client's (None: unknown, so no packing).
    """
    flags = tuple(flag for flag in base.flags if flag not in _DROPPED)
    flags += ("-R", "--ignore-missing-args", "-ii", *latency_flags(url, flags))
    paths = [layout.entry_path(entry) for entry in entries]
    sources = packed_sources(url, paths) if may_pack(flags, version) else None
    if sources is not None:
        flags += ("--old-args",)
    else:
        sources = source_args(url, paths)
    commands = []
    for part in batches(sources):
        first, *rest = part
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
