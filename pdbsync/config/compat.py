"""Configs written for the Rust pdb-sync (github.com/N283T/pdb-sync).

The Rust tool reads the same ``config.toml`` layout and ignores keys it does not know,
so people arrive with files that carry its keys. Any config it loads must load here:

- keys it knows that pdb-sync implements work the same way (``[sync] mirror``,
  ``[mirror_selection]``, and the bare option names it accepts on a target as legacy
  keys, ``delete = true`` beside ``url``, which are read as ``rsync_delete``);
- keys it knows that pdb-sync does not use (:data:`RUST_ONLY`) are taken out before
  validation and named in one warning; ``config migrate`` removes them;
- anything else is left for the schema to reject, with its did-you-mean hint, so typos
  are still caught.

The key lists are the union over the Rust tool's history (``src/config/schema.rs``), so
a config written for an older release loads too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pdbsync.config import options

#: Keys (dotted paths) the Rust pdb-sync knows and pdb-sync ignores. A name ending in
#: ``.*`` is a whole table. ``sync.delete``/``sync.bwlimit``/``sync.layout``/
#: ``sync.data_types`` applied to its removed ``sync wwpdb`` command, not to targets.
RUST_ONLY: tuple[str, ...] = (
    "paths.data_type_dirs",
    "sync.bwlimit",
    "sync.delete",
    "sync.layout",
    "sync.data_types",
    "download",
)

#: Option names the Rust tool accepts directly on a target as aliases of its legacy
#: ``rsync_*`` keys (its ``#[serde(alias = ...)]``); pdb-sync reads them as those keys.
RUST_TARGET_ALIASES: tuple[str, ...] = (
    "delete",
    "compress",
    "checksum",
    "size_only",
    "ignore_times",
    "modify_window",
    "partial",
    "partial_dir",
    "max_size",
    "min_size",
    "timeout",
    "contimeout",
    "backup",
    "backup_dir",
    "chmod",
    "exclude",
    "include",
    "exclude_from",
    "include_from",
    "verbose",
    "quiet",
    "itemize_changes",
)

MIGRATE_HINT = "'pdb-sync config migrate' removes them"


def ignored_keys(data: Mapping[str, Any]) -> list[str]:
    """The Rust-only keys present in ``data``, as dotted paths, in :data:`RUST_ONLY` order."""
    found = []
    for dotted in RUST_ONLY:
        *parents, leaf = dotted.split(".")
        table: Any = data
        for part in parents:
            table = table.get(part) if isinstance(table, Mapping) else None
        if isinstance(table, Mapping) and leaf in table:
            found.append(dotted)
    return found


def warning(keys: list[str]) -> str:
    """The one warning line for the ignored keys."""
    return (
        f"ignoring {', '.join(keys)}: known to the Rust pdb-sync, not used by pdb-sync; "
        f"{MIGRATE_HINT}"
    )


def normalise(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """``data`` as pdb-sync reads it: (normalised copy, ignored keys, problems).

    Rust-only keys are removed; bare option aliases on a target become ``rsync_*`` keys.
    A target with both spellings of one key is a problem (the Rust tool refuses it too).
    """
    result = copy.deepcopy(dict(data))
    ignored = ignored_keys(result)
    for dotted in ignored:
        *parents, leaf = dotted.split(".")
        table = result
        for part in parents:
            table = table[part]
        del table[leaf]
    problems = []
    sync = result.get("sync")
    custom = sync.get("custom") if isinstance(sync, Mapping) else None
    if isinstance(custom, dict):
        for name, entry in custom.items():
            if not isinstance(entry, dict):
                continue
            for key in RUST_TARGET_ALIASES:
                if key not in entry:
                    continue
                legacy = options.LEGACY_PREFIX + key
                if legacy in entry:
                    problems.append(
                        f"sync.custom.{name}: both {key!r} and {legacy!r} are set; keep one"
                    )
                    continue
                entry[legacy] = entry.pop(key)
    return result, ignored, problems


def alias_keys(entry: Mapping[str, Any]) -> list[str]:
    """The bare Rust option aliases a target table uses (for ``config migrate``)."""
    return [key for key in RUST_TARGET_ALIASES if key in entry]
