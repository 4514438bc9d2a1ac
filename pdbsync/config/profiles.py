"""Built-in profiles: ready-made targets that ``sync --profile-add NAME`` writes into a config.

A profile whose dest would overlap an existing target's (``all-structures`` holds
``structures``'s tree) is refused before anything is written: two targets in one tree
can delete each other's files.

Adding is a locked read-modify-write (see :mod:`pdbsync.config.edit`): the config is
read under an exclusive lock, the target appended with tomlkit (comments untouched),
and the result renamed into place, so concurrent ``--profile-add`` runs all land.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from pdbsync import outputs
from pdbsync.config import edit as config_edit
from pdbsync.config.load import dest_overlap, dest_problem
from pdbsync.errors import ConfigError, UsageError
from pdbsync.mirrors import registry as mirrors


@dataclass(frozen=True)
class Profile:
    """A ready target: what it is, where it comes from, where it goes, and its preset.

    A part of the wwPDB archive is a ``path`` inside the mirror's data tree, with no
    mirror named: it follows ``[sync] mirror`` (default rcsb), so switching every such
    target to another mirror is one line. Other data (EMDB, SIFTS) has its own ``source``.

    Only trees of big files get a preset with ``partial`` (an interrupted map resumes);
    trees of small files keep the fast defaults, since ``--partial-dir`` and
    ``checksum`` tax every nightly re-sync of them (docs/benchmarks.md). ``options``
    are written as ``[sync.custom.NAME.options]``.
    """

    name: str
    description: str
    dest: str
    preset: str | None = None
    path: str | None = None
    source: str | None = None
    options: tuple[tuple[str, object], ...] = ()

    @property
    def url(self) -> str:
        """The rsync URL it syncs from (a path: on the default mirror, unless the config
        names another)."""
        if self.source is not None:
            return self.source
        return mirrors.registry()[mirrors.DEFAULT_MIRROR].source(self.path or "")


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            "structures",
            "Divided mmCIF structures (wwPDB archive)",
            "structures/divided/mmCIF",
            path="structures/divided/mmCIF/",
        ),
        Profile(
            "assemblies",
            "Biological assemblies, mmCIF (wwPDB archive)",
            "assemblies/mmCIF/divided",
            path="assemblies/mmCIF/divided/",
        ),
        Profile(
            "emdb",
            "EMDB entries: maps, headers, images (EMBL-EBI; large)",
            "emdb",
            "fast",
            source="rsync.ebi.ac.uk::pub/databases/emdb/",
        ),
        Profile(
            "sifts",
            "SIFTS residue-level mappings (PDBe)",
            "sifts",
            source="rsync.ebi.ac.uk::pub/databases/msd/sifts/",
        ),
        Profile(
            "all-structures",
            "Every structure format, divided and all (wwPDB archive; very large)",
            "structures",
            path="structures/",
            options=(("delete", True),),
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile ``name``; UsageError lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(
            f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}"
        ) from None


def _with_profile(path: Path, text: str, profile: Profile) -> str:
    document = config_edit.parse_document(path, text)
    sync = document.get("sync")
    if sync is None:
        sync = tomlkit.table(is_super_table=True)
        document["sync"] = sync
    custom = sync.get("custom")
    if custom is None:
        custom = tomlkit.table(is_super_table=True)
        sync["custom"] = custom
    if profile.name in custom:
        raise ConfigError(
            f"{path}: sync.custom.{profile.name} already exists; remove it first or edit it by hand"
        )
    for name, entry in custom.items():
        dest = entry.get("dest") if isinstance(entry, Mapping) else None
        if not isinstance(dest, str) or dest_problem(dest):
            continue  # the config's own problem; 'config validate' reports it
        overlap = dest_overlap(profile.name, profile.dest, name, dest)
        if overlap:
            raise ConfigError(f"{path}: {overlap}")
    table = tomlkit.table()
    table.add(tomlkit.comment("added by 'pdb-sync sync --profile-add'"))
    table["description"] = profile.description
    if profile.path is not None:
        table["path"] = profile.path  # on [sync] mirror (default rcsb)
    else:
        table["url"] = profile.url
    table["dest"] = profile.dest
    if profile.preset:
        table["preset"] = profile.preset
    if profile.options:
        table["options"] = dict(profile.options)
    custom[profile.name] = table
    result = tomlkit.dumps(document)
    return result if result.endswith("\n") else result + "\n"


def add_profile(path: Path, name: str, dry_run: bool = False) -> str:
    """Add profile ``name`` as ``[sync.custom.NAME]`` to the config at ``path``.

    Creates the config if it does not exist. Returns the unified diff of the change;
    with ``dry_run`` nothing is written. A symlinked config is edited where the link
    points (the link stays), keeping the file's owner and mode.
    """
    profile = get_profile(name)
    real = outputs.real_path(path)
    with config_edit.locked(real):
        before = config_edit.read_text(real) if real.exists() else ""
        after = _with_profile(path, before, profile)
        if not dry_run:
            config_edit.atomic_write(real, after)
    return config_edit.unified_diff(path, before, after)
