"""Where a target's files really go: the pure path rules behind "nothing outside pdb_dir".

pdb-sync runs unattended, often as root and with ``delete``; rsync follows a symlink in
the destination path like any other program, so a ``dest`` written as ``link`` can mean
``/elsewhere``. Every path rsync writes or deletes in is therefore judged by where it
*resolves* (``os.path.realpath``, which also follows dangling links: ``mkdir -p`` would
create their target), compared with the resolved mirror root. pdb_dir itself may be a
symlink (``/data/pdb -> /mnt/big/pdb``); only what lies below it is held to the rule.

Nothing here reads the config or raises: callers turn the answers into messages.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

#: Every C0 control character and DEL: none belongs in a URL or a path pdb-sync passes on
#: (they corrupt log lines and terminals, and NUL cannot be passed to exec at all).
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

#: How two destinations overlap (see :func:`overlaps`).
SAME = "same"
INSIDE = "inside"


def has_control_chars(text: str) -> bool:
    """True if ``text`` holds a C0 control character or DEL."""
    return CONTROL_CHARS.search(text) is not None


def parts(relative: str) -> tuple[str, ...]:
    """The components of a relative path as rsync will use them (``./a//b/.`` is a, b).

    Plain string work rather than ``PurePosixPath`` (an object built per call): this
    runs for every target of configs with tens of thousands of them.
    """
    return tuple(part for part in relative.split("/") if part and part != ".")


def real(path: Path | str) -> Path:
    """Where ``path`` resolves, following every symlink, dangling ones included."""
    return Path(os.path.realpath(path))


class Resolver:
    """``os.path.realpath`` of many relative paths under one root, sharing common parents.

    A config may have tens of thousands of targets in a few parent directories;
    ``realpath`` would ``lstat`` every component of every one of them again. This walks
    each path from the resolved root one component at a time, remembering what every
    parent resolved to: a component that is a symlink is handed to ``realpath`` (so its
    meaning is exactly realpath's, dangling links included), and below a component that
    does not exist the rest is joined as written, as realpath does.
    """

    def __init__(self, root: Path) -> None:
        self.root = real(root)
        # components → (resolved path, whether it exists on disk)
        self._known: dict[tuple[str, ...], tuple[str, bool]] = {(): (str(self.root), True)}

    def resolve(self, components: tuple[str, ...]) -> str:
        """Where ``root/a/b/...`` resolves (components as from :func:`parts`: no '.')."""
        return self._resolve(components)[0]

    def _resolve(self, components: tuple[str, ...]) -> tuple[str, bool]:
        known = self._known.get(components)
        if known is not None:
            return known
        parent, parent_exists = self._resolve(components[:-1])
        candidate = os.path.join(parent, components[-1])
        result = (candidate, False)
        if parent_exists:
            try:
                mode = os.lstat(candidate).st_mode
            except OSError:
                pass
            else:
                if stat.S_ISLNK(mode):
                    target = os.path.realpath(candidate)
                    result = (target, os.path.lexists(target))
                else:
                    result = (candidate, True)
        self._known[components] = result
        return result


def below(path: Path | str, root: Path | str) -> tuple[str, ...] | None:
    """The components of ``path`` under ``root`` (``()`` if it is root), None if outside.

    Both should already be resolved (:func:`real`); this compares them as text only.
    """
    root_text = str(root)
    if str(path) == root_text:
        return ()
    prefix = root_text if root_text.endswith("/") else root_text + "/"
    path_text = str(path)
    if not path_text.startswith(prefix):
        return None
    return tuple(path_text[len(prefix) :].split("/"))


def moved(dest: Path, planned: Path) -> Path | None:
    """Where ``dest`` resolves now, if that is no longer ``planned``; None if unchanged.

    The worker asks this just before it creates a destination and starts rsync: a
    symlink swapped into the path after the run was planned must not redirect rsync.
    """
    now = real(dest)
    return None if now == planned else now


def overlaps(entries: Sequence[tuple[str, ...]]) -> list[tuple[int, int, str]]:
    """Which entries (component tuples, e.g. from :func:`parts`) share a tree.

    Returns ``(index, other_index, relation)``: entry ``index`` is :data:`INSIDE` entry
    ``other_index`` (its nearest enclosing entry), or is the :data:`SAME` directory as
    the first entry (lowest index) with equal components. Every entry that overlaps
    another appears once as ``index`` except an outermost one, which always appears as
    ``other_index``. Ordered by the larger index of each pair, then the smaller (the
    order of the old pairwise check: config order).

    Sorted tuples put an ancestor directly before its descendants, so one pass with a
    stack of the current chain of ancestors finds every overlap: O(n log n), not O(n²).
    """
    order = sorted(range(len(entries)), key=lambda i: (entries[i], i))
    found: list[tuple[int, int, str]] = []
    chain: list[int] = []  # indexes of the ancestors of the current entry, outermost first
    for index in order:
        current = entries[index]
        while chain:
            top = entries[chain[-1]]
            if current[: len(top)] == top:
                break
            chain.pop()
        if not chain:
            chain.append(index)
        elif entries[chain[-1]] == current:
            found.append((index, chain[-1], SAME))
        else:
            found.append((index, chain[-1], INSIDE))
            chain.append(index)
    found.sort(key=lambda pair: (max(pair[0], pair[1]), min(pair[0], pair[1])))
    return found


def escapes(relative: str) -> bool:
    """True if the relative path ``relative`` has a ``..`` component (it could leave)."""
    return ".." in relative.split("/")


#: The lock file of dest ``D`` is ``D`` + this, in D's parent directory (pdbsync.run.locks
#: takes it; pdbsync.config.write_rules keeps every other path off it).
LOCK_SUFFIX = ".pdb-sync.lock"


def lock_path(dest: Path) -> Path:
    """Where the lock of destination ``dest`` lives: beside it, never inside it."""
    return dest.parent / f"{dest.name}{LOCK_SUFFIX}"
