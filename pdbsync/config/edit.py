"""Writing the user's config: ``config init``, ``config migrate`` and the shared file safety.

Edits go through tomlkit so comments, ordering and formatting the user wrote survive.
Every write goes through :func:`pdbsync.outputs.write_file` (atomic rename; a symlinked
config is edited where it points, keeping the link; owner and mode are kept) and
happens under an exclusive ``flock`` on a side file, so two pdb-sync processes editing
the same config never lose each other's change and a reader never sees half a file.
Callers pass the real path (:func:`pdbsync.outputs.real_path`), so the lock and the
backup sit beside the file that is edited, not beside a link to it.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table

from pdbsync import outputs
from pdbsync.config import compat, options
from pdbsync.errors import ConfigError

# -- file safety ------------------------------------------------------------------------


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for editing ``path`` (on ``path.lock``, which survives renames).

    The config itself cannot carry the lock: an atomic replace swaps in a new inode, and a
    second editor blocked on the old one would then read stale content. The lock file is
    opened read-only (``flock`` needs no more), so one that root created stays usable by
    the config's owner.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(f"{lock_path}: cannot create the edit lock: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def atomic_write(path: Path, text: str, like: os.stat_result | None = None) -> None:
    """Replace the config at ``path`` with ``text`` (:func:`pdbsync.outputs.write_file`).

    An existing file keeps its owner and mode; ``like`` gives another file's (a backup
    takes its original's). Failures are a one-line ConfigError.
    """
    outputs.write_file(path, text.encode("utf-8"), like=like, error=ConfigError)


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
    while os.path.lexists(candidate):
        number += 1
        candidate = path.with_name(f"{path.name}.bak.{number}")
    return candidate


# -- config init ------------------------------------------------------------------------

#: The starter config's targets: (name, description, key, source, dest, mirror). ``key``
#: is "path" (inside the mirror's data tree, on ``mirror`` or else ``[sync] mirror``) or
#: "url" (data outside the PDB archive tree).
STARTER_TARGETS = (
    (
        "mmcif",
        "Divided mmCIF structures (wwPDB archive)",
        "path",
        "structures/divided/mmCIF/",
        "structures/divided/mmCIF",
        None,
    ),
    (
        "assemblies",
        "Biological assemblies, mmCIF (from PDBj)",
        "path",
        "assemblies/mmCIF/divided/",
        "assemblies/mmCIF/divided",
        "pdbj",
    ),
    (
        "sifts",
        "SIFTS residue-level mappings to UniProt (PDBe)",
        "url",
        "rsync.ebi.ac.uk::pub/databases/msd/sifts/",
        "sifts",
        None,
    ),
    (
        "emdb",
        "EMDB maps and headers (EMBL-EBI; large)",
        "url",
        "rsync.ebi.ac.uk::pub/databases/emdb/",
        "emdb",
        None,
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
# override these; command-line flags override everything. Nothing here slows a
# nightly re-sync of the archive's ~250,000 small files: partial = true (resume a
# cut-off file) and checksum = true (read every byte at every run) each cost rsync
# far more than a plain run does, so they are set only where they pay off (emdb
# below). The cost of each: docs/benchmarks.md.
[sync.defaults]
timeout = 600          # seconds without data before rsync gives up
contimeout = 60        # seconds to wait for the rsync daemon to answer
retry = 2              # extra attempts after a transient failure
# delete = true        # remove local files that are gone upstream
# bwlimit = 20000      # KB/s
"""


def _mirrors_block() -> str:
    """``[sync] mirror`` with every built-in mirror in a comment (from the registry)."""
    from pdbsync.mirrors.registry import BUILTIN

    lines = [
        "",
        "[sync]",
        "# The mirror of every target that gives a path (not a url); one line switches them",
        "# all. 'auto' picks the lowest-latency reachable one (measured, then cached).",
        "# 'pdb-sync mirrors test' times them from here. The built-in mirrors:",
    ]
    for mirror in BUILTIN:
        aliases = f" ({', '.join(mirror.aliases)})" if mirror.aliases else ""
        lines.append(f"#   {mirror.id}{aliases}: {mirror.name}, {mirror.region}: {mirror.url}")
    lines.append('mirror = "rcsb"')
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return tomlkit.string(text).as_string()


def starter_config(pdb_dir: str, minimal: bool = False) -> str:
    """The text of a commented starter config (``--minimal``: one target, no extras)."""
    parts = [_INIT_HEADER.format(pdb_dir=_toml_string(pdb_dir))]
    targets = STARTER_TARGETS[:1] if minimal else STARTER_TARGETS
    if not minimal:
        parts.append(_mirrors_block())
        parts.append(_INIT_DEFAULTS)
    for name, description, key, source, dest, mirror in targets:
        block = [
            "",
            f"[sync.custom.{name}]",
            f"description = {_toml_string(description)}",
        ]
        if mirror is not None:
            block.append(f"mirror = {_toml_string(mirror)}  # this target only")
        block += [f"{key} = {_toml_string(source)}", f"dest = {_toml_string(dest)}"]
        if not minimal and name == "mmcif":
            block += [
                '# preset = "safe"     # safe | fast | minimal | conservative: all but minimal',
                "#                     # slow a re-sync of these ~250,000 files (see the",
                "#                     # cost of each in docs/configuration.md, Presets)",
            ]
        if not minimal and name == "emdb":
            block += [
                "",
                f"[sync.custom.{name}.options]",
                'exclude = ["*.map.gz"]  # headers and images only; drop this to get the maps',
                "partial = true          # big maps: a cut-off one resumes at the next run",
            ]
        parts.append("\n".join(block) + "\n")
    return "".join(parts)


def init_config(path: Path, pdb_dir: str, force: bool = False, minimal: bool = False) -> str:
    """Write the starter config to ``path``; refuses to replace a file unless ``force``.

    A symlink at ``path`` is written through (its target gets the text, the link stays).
    """
    text = starter_config(pdb_dir, minimal)
    real = outputs.real_path(path)
    with locked(real):
        if os.path.lexists(path) and not force:
            raise ConfigError(f"{path}: already exists; use --force to overwrite it")
        atomic_write(real, text)
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
    notes = _drop_rust_only(document)
    sync = document.get("sync")
    if sync is None or "custom" not in sync:
        return (tomlkit.dumps(document) if notes else text), notes
    defaults = {k: _plain(v) for k, v in sync.get("defaults", {}).items()}
    for name, table in sync["custom"].items():
        if isinstance(table, Table):
            for key in compat.alias_keys(table):  # the Rust tool's bare option names
                if options.LEGACY_PREFIX + key not in table:
                    table[options.LEGACY_PREFIX + key] = table[key]
                    del table[key]
            notes += _migrate_target(name, table, defaults)
    return tomlkit.dumps(document), notes


def _drop_rust_only(document: tomlkit.TOMLDocument) -> list[str]:
    """Remove the keys only the Rust pdb-sync uses (pdbsync.config.compat.RUST_ONLY)."""
    notes = []
    for dotted in compat.ignored_keys(document):
        *parents, leaf = dotted.split(".")
        table: Any = document
        for part in parents:
            table = table[part]
        del table[leaf]
        notes.append(f"removed {dotted} (used by the Rust pdb-sync, not by pdb-sync)")
    return notes


def migrate_config(path: Path, dry_run: bool = False) -> Migration:
    """Rewrite the legacy ``rsync_*`` keys of the config at ``path``.

    Unless ``dry_run``, the original is first copied to a free ``NAME.bak*`` (with the
    original's owner and mode: it holds the same text) and the new text replaces the
    config atomically; comments and formatting are kept. A symlinked config is edited
    where the link points, and the backup is made beside that file.
    """
    real = outputs.real_path(path)
    with locked(real):
        before = read_text(path)
        after, notes = migrate_text(path, before)
        backup = None
        if after != before and not dry_run:
            backup = _back_up(real)
            atomic_write(real, after)
    return Migration(path, before, after, tuple(notes), backup)


def _back_up(real: Path) -> Path:
    """Copy the config's bytes (not its decoded text) to a free ``NAME.bak*`` beside it,
    with its owner and mode: the backup holds what the config held, so it is as private."""
    backup = backup_path(real)
    try:
        original = os.stat(real)
        content = real.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{real}: cannot read config file: {exc.strerror}") from None
    outputs.write_file(backup, content, like=original, error=ConfigError)
    return backup
