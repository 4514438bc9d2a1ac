"""Writing the user's config: ``config init``, ``config migrate`` and the shared file safety.

Edits go through tomlkit so comments, ordering and formatting the user wrote survive.
Every write is atomic (temp file in the same directory, fsync, rename) and happens
under an exclusive ``flock`` on a side file, so two pdb-sync processes editing the same
config never lose each other's change and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table

from pdbsync import options
from pdbsync.errors import ConfigError

# -- file safety ------------------------------------------------------------------------


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for editing ``path`` (on ``path.lock``, which survives renames).

    The config itself cannot carry the lock: an atomic replace swaps in a new inode, and a
    second editor blocked on the old one would then read stale content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename; keeps an existing file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def read_text(path: Path) -> str:
    """The config's text; ConfigError (one line) when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None


def parse_document(path: Path, text: str) -> tomlkit.TOMLDocument:
    """tomlkit's comment-preserving parse, with TOML errors as ConfigError."""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None


def unified_diff(path: Path, before: str, after: str) -> str:
    """What an edit changes, as a unified diff (for ``--dry-run``)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{path} (current)",
            tofile=f"{path} (new)",
        )
    )


def backup_path(path: Path) -> Path:
    """A free ``NAME.bak``, ``NAME.bak.1``, ... next to ``path``: never overwrite a backup."""
    candidate = path.with_name(path.name + ".bak")
    number = 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}.bak.{number}")
    return candidate


# -- config init ------------------------------------------------------------------------

#: Real wwPDB endpoints for the starter config: (name, description, url, dest).
STARTER_TARGETS = (
    (
        "mmcif",
        "Divided mmCIF structures (RCSB PDB, port 33444)",
        "rsync://rsync.rcsb.org:33444/ftp_data/structures/divided/mmCIF/",
        "structures/divided/mmCIF",
    ),
    (
        "assemblies",
        "Biological assemblies, mmCIF (PDBj)",
        "data.pdbj.org::rsync/pub/pdb/data/assemblies/mmCIF/divided/",
        "assemblies/mmCIF/divided",
    ),
    (
        "sifts",
        "SIFTS residue-level mappings to UniProt (PDBe)",
        "rsync.ebi.ac.uk::pub/databases/msd/sifts/",
        "sifts",
    ),
    (
        "emdb",
        "EMDB maps and headers (EMBL-EBI; large)",
        "rsync.ebi.ac.uk::pub/databases/emdb/",
        "emdb",
    ),
)

_INIT_HEADER = """\
# pdb-sync configuration (written by 'pdb-sync config init').
# Check it with 'pdb-sync config validate'; see what would run with
# 'pdb-sync sync --all --dry-run -v'. Reference: docs/configuration.md.

[paths]
# Root of the local mirror; every target's dest is relative to it.
pdb_dir = {pdb_dir}
"""

_INIT_DEFAULTS = """
# Options for every target. A target's preset and its [sync.custom.NAME.options]
# override these; command-line flags override everything.
[sync.defaults]
partial = true
timeout = 600          # seconds without data before rsync gives up
contimeout = 60        # seconds to wait for the rsync daemon to answer
retry = 2              # extra attempts after a transient failure
# delete = true        # remove local files that are gone upstream
# bwlimit = 20000      # KB/s
"""

_INIT_MIRRORS = """
# The same archive is served by every wwPDB partner; pick the closest one:
#   RCSB PDB (US):   rsync://rsync.rcsb.org:33444/ftp_data/structures/divided/mmCIF/
#   PDBj (Japan):    data.pdbj.org::rsync/pub/pdb/data/structures/divided/mmCIF/
#   PDBe (UK):       rsync.ebi.ac.uk::pub/databases/pdb/data/structures/divided/mmCIF/
#   wwPDB:           rsync.wwpdb.org::ftp_data/structures/divided/mmCIF/
"""


def _toml_string(text: str) -> str:
    return tomlkit.string(text).as_string()


def starter_config(pdb_dir: str, minimal: bool = False) -> str:
    """The text of a commented starter config (``--minimal``: one target, no extras)."""
    parts = [_INIT_HEADER.format(pdb_dir=_toml_string(pdb_dir))]
    targets = STARTER_TARGETS[:1] if minimal else STARTER_TARGETS
    if not minimal:
        parts.append(_INIT_DEFAULTS)
        parts.append(_INIT_MIRRORS)
    for name, description, url, dest in targets:
        block = [
            "",
            f"[sync.custom.{name}]",
            f"description = {_toml_string(description)}",
            f"url = {_toml_string(url)}",
            f"dest = {_toml_string(dest)}",
        ]
        if not minimal and name == "mmcif":
            block.append('preset = "safe"       # safe | fast | minimal | conservative')
        if not minimal and name == "emdb":
            block += [
                "",
                f"[sync.custom.{name}.options]",
                'exclude = ["*.map.gz"]  # headers and images only; drop this to get the maps',
            ]
        parts.append("\n".join(block) + "\n")
    return "".join(parts)


def init_config(path: Path, pdb_dir: str, force: bool = False, minimal: bool = False) -> str:
    """Write the starter config to ``path``; refuses to replace a file unless ``force``."""
    text = starter_config(pdb_dir, minimal)
    with locked(path):
        if path.exists() and not force:
            raise ConfigError(f"{path}: already exists; use --force to overwrite it")
        atomic_write(path, text)
    return text


# -- config migrate ---------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """What ``config migrate`` did (or would do) to one config."""

    path: Path
    before: str
    after: str
    changes: tuple[str, ...]
    backup: Path | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _plain(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def _migrate_target(name: str, table: Table, defaults: dict[str, Any]) -> list[str]:
    """Move one target's ``rsync_*`` keys into ``options`` (or a preset); return notes.

    The resolved options must not change: a legacy key that ``[sync.defaults]`` or the
    target's preset already overrides never took effect, so it is dropped, not promoted.
    """
    legacy = {
        key[len(options.LEGACY_PREFIX) :]: _plain(table[key])
        for key in list(table.keys())
        if key.startswith(options.LEGACY_PREFIX)
        and key[len(options.LEGACY_PREFIX) :] in options.SPECS
    }
    if not legacy:
        return []
    preset_name = _plain(table.get("preset"))
    shadowing = set(defaults) | set(options.PRESETS.get(preset_name or "", {}))
    existing = table.get("options")
    existing_keys = set(existing.keys()) if existing is not None else set()
    moved = {k: v for k, v in legacy.items() if k not in shadowing and k not in existing_keys}
    notes = []
    comments = {}
    for key in legacy:
        comment = table.item(options.LEGACY_PREFIX + key).trivia.comment
        if comment:
            comments[key] = comment.lstrip("#").strip()
        del table[options.LEGACY_PREFIX + key]
        if key not in moved:
            notes.append(f"sync.custom.{name}: dropped rsync_{key} (overridden, had no effect)")
    if not moved:
        return notes
    match = next(
        (p for p, values in options.PRESETS.items() if values and values == moved),
        None,
    )
    if match and preset_name is None and existing is None:
        table["preset"] = match
        notes.append(f"sync.custom.{name}: rsync_* keys → preset = {match!r}")
        return notes
    created = existing is None
    if existing is None:
        existing = tomlkit.table()
        table.append("options", existing)
    for key, value in moved.items():
        item = tomlkit.item(value)
        if key in comments:
            item.comment(comments[key])
        existing[key] = item
    if created:
        existing.add(tomlkit.nl())
    notes.append(
        f"sync.custom.{name}: rsync_* keys → [sync.custom.{name}.options] ({', '.join(moved)})"
    )
    return notes


def migrate_text(path: Path, text: str) -> tuple[str, list[str]]:
    """The migrated text of a config, and one note per change (nothing is written)."""
    document = parse_document(path, text)
    sync = document.get("sync")
    if sync is None or "custom" not in sync:
        return text, []
    defaults = {k: _plain(v) for k, v in sync.get("defaults", {}).items()}
    notes: list[str] = []
    for name, table in sync["custom"].items():
        if isinstance(table, Table):
            notes += _migrate_target(name, table, defaults)
    return tomlkit.dumps(document), notes


def migrate_config(path: Path, dry_run: bool = False) -> Migration:
    """Rewrite the legacy ``rsync_*`` keys of the config at ``path``.

    Unless ``dry_run``, the original is first copied to a free ``NAME.bak*`` and the new
    text replaces the config atomically; comments and formatting are kept.
    """
    with locked(path):
        before = read_text(path)
        after, notes = migrate_text(path, before)
        backup = None
        if after != before and not dry_run:
            backup = backup_path(path)
            atomic_write(backup, before)
            atomic_write(path, after)
    return Migration(path, before, after, tuple(notes), backup)
