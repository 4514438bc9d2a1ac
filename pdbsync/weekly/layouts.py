"""Where the wwPDB puts an entry's files, for each data type a weekly update knows.

Every divided tree of the archive hashes an entry into the directory named by the
middle two characters of its 4-character id (``1abc`` -> ``ab/``); the file names
differ per data type. A weekly update (pdbsync.weekly.plan) turns the ids of the status
lists into paths with these rules, so it can ask rsync for those files alone instead of
walking the whole tree. A layout whose files are not one fixed name per id (an entry
has 1..N assemblies, NMR data in several formats) gives a glob, which the rsync daemon
expands on its side.

The layout and the data root (the directory holding ``status/``) come from the
target's URL when it ends in one of the known data-type paths; a target can also name
its layout (``layout = "mmcif"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A classic PDB id: a digit 1-9 and three letters or digits (lower case in file names).
ID_PATTERN = re.compile(r"^[1-9][a-z0-9]{3}$")
#: The extended form (``pdb_00001abc``) the wwPDB announced; no mirror serves files named
#: by it yet, so a list holding one makes the run fall back to a full sync.
EXTENDED_ID_PATTERN = re.compile(r"^pdb_[a-z0-9]{8}$")


@dataclass(frozen=True)
class Layout:
    """One data type's tree: where it sits under the data root and its file names.

    ``pattern`` is the file name with ``{id}`` in it; ``glob``: the name is a pattern of
    several files per id (``*`` in it), expanded by the mirror's rsync daemon.
    """

    name: str
    path: str  # under the data root, no slashes at the ends
    pattern: str
    description: str

    @property
    def glob(self) -> bool:
        return "*" in self.pattern

    def entry_path(self, entry: str) -> str:
        """The entry's file (or glob) relative to the layout's directory: ``ab/name``."""
        return f"{entry[1:3]}/{self.pattern.format(id=entry)}"

    def owns(self, relative: str, entry: str) -> bool:
        """Whether ``relative`` (``ab/name``, as a listing gives it) is one of the entry's files."""
        want = self.entry_path(entry)
        if not self.glob:
            return relative == want
        head, _star, tail = want.partition("*")
        return relative.startswith(head) and relative.endswith(tail) and "/" not in relative[3:]


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("mmcif", "structures/divided/mmCIF", "{id}.cif.gz", "divided mmCIF"),
        Layout("pdb", "structures/divided/pdb", "pdb{id}.ent.gz", "divided PDB format"),
        Layout("xml", "structures/divided/XML", "{id}.xml.gz", "PDBML/XML"),
        Layout(
            "xml-noatom", "structures/divided/XML-noatom", "{id}-noatom.xml.gz", "PDBML, no atoms"
        ),
        Layout(
            "xml-extatom",
            "structures/divided/XML-extatom",
            "{id}-extatom.xml.gz",
            "PDBML, atoms only",
        ),
        Layout(
            "structure-factors",
            "structures/divided/structure_factors",
            "r{id}sf.ent.gz",
            "structure factors",
        ),
        Layout(
            "nmr-data", "structures/divided/nmr_data", "{id}_nmr-data.*", "NMR data (NEF, STAR)"
        ),
        Layout(
            "assemblies", "assemblies/mmCIF/divided", "{id}-assembly*.cif.gz", "mmCIF assemblies"
        ),
    )
}


def known_layouts() -> str:
    """The layout names, for error messages."""
    return ", ".join(LAYOUTS)


def layout_problem(name: object) -> str | None:
    """Why ``name`` is not a known layout, or None."""
    if isinstance(name, str) and name in LAYOUTS:
        return None
    return f"unknown layout {name!r}; known layouts: {known_layouts()}"


@dataclass(frozen=True)
class Place:
    """A target's layout and the URL of its data root (which holds ``status/``)."""

    layout: Layout
    data_root: str  # ends with "/"


def _split_url(url: str) -> tuple[str, str]:
    """(the URL up to its module, the path inside the module without slashes at the ends)."""
    if url.startswith("rsync://"):
        rest = url[len("rsync://") :]
        host, _, tail = rest.partition("/")
        module, _, path = tail.partition("/")
        return f"rsync://{host}/{module}", path.strip("/")
    host, sep, tail = url.partition("::")
    if not sep:
        return url, ""
    module, _, path = tail.partition("/")
    return f"{host}::{module}", path.strip("/")


def detect(url: str, layout: str | None = None) -> Place | None:
    """The layout and data root of a target's ``url``; None if the URL does not end in a
    known data-type path and no ``layout`` is given.

    With ``layout`` given, the URL must still end in that layout's path for the data root
    to be found; else the data root is the URL's parent of that layout's depth.
    """
    base, path = _split_url(url)
    candidates = [LAYOUTS[layout]] if layout is not None else list(LAYOUTS.values())
    for candidate in candidates:
        if path == candidate.path or path.endswith("/" + candidate.path):
            root = path[: len(path) - len(candidate.path)].strip("/")
            return Place(candidate, f"{base}/{root}/" if root else f"{base}/")
    if layout is not None:  # named explicitly: the data root is as many levels up
        parts = [part for part in path.split("/") if part]
        depth = LAYOUTS[layout].path.count("/") + 1
        root = "/".join(parts[: max(len(parts) - depth, 0)])
        return Place(LAYOUTS[layout], f"{base}/{root}/" if root else f"{base}/")
    return None
