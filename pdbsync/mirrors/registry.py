"""The mirror registry: which rsync daemons serve the wwPDB archive, and under what names.

The same ``data/`` tree is served by four wwPDB partners with different module layouts,
so a target can name a mirror and a path inside that tree (``mirror = "pdbj"``,
``path = "structures/divided/mmCIF/"``) and switching mirror is one line. Operators add
or override mirrors with ``[mirrors.NAME]`` (that is also how the tests point every id
at a daemon on 127.0.0.1). Everything here is pure: probing lives in pdbsync.mirrors.probe, the
``auto`` choice in pdbsync.mirrors.choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdbsync.rsync import url as rsync_url
from pdbsync.rsync.url import RSYNC_PORT

#: The mirror value that means "the lowest-latency reachable mirror, measured".
AUTO = "auto"
#: The default ``[sync] mirror`` when a target gives ``path`` and nobody names one.
DEFAULT_MIRROR = "rcsb"


@dataclass(frozen=True)
class Mirror:
    """One rsync source of the wwPDB ``data/`` tree (``url`` ends with ``/``)."""

    id: str
    name: str
    region: str
    url: str
    aliases: tuple[str, ...] = ()
    builtin: bool = True

    @property
    def host(self) -> str:
        return endpoint(self.url)[0]

    @property
    def port(self) -> int:
        return endpoint(self.url)[1]

    def source(self, path: str) -> str:
        """The rsync URL of ``path`` inside this mirror's data tree."""
        return self.url + path.lstrip("/")


#: The wwPDB partners (facts from the Rust pdb-sync's registry and the partners' docs).
BUILTIN: tuple[Mirror, ...] = (
    Mirror("rcsb", "RCSB PDB", "US", "rsync://rsync.rcsb.org:33444/ftp_data/", ("us",)),
    Mirror("pdbj", "PDBj", "Japan", "data.pdbj.org::rsync/pub/pdb/data/", ("jp",)),
    Mirror(
        "pdbe",
        "PDBe",
        "Europe",
        "rsync://rsync.ebi.ac.uk/pub/databases/pdb/data/",
        ("uk", "eu"),
    ),
    Mirror("wwpdb", "wwPDB", "global", "rsync://rsync.wwpdb.org/ftp_data/", ("global",)),
)


def endpoint(url: str) -> tuple[str, int]:
    """(host, port) of an rsync daemon URL (``host::module`` or ``rsync://host[:port]/``)."""
    parsed = rsync_url.daemon(url)
    if parsed is None:
        raise ValueError(f"{url!r} is not an rsync daemon URL")
    return parsed.address, RSYNC_PORT if parsed.port is None else parsed.port


def module(url: str) -> str:
    """The daemon module a URL names (``ftp_data`` of ``rsync://h:33444/ftp_data/x``)."""
    parsed = rsync_url.daemon(url)
    return parsed.module if parsed is not None else url.split("/", 1)[0]


def registry(config_mirrors: Mapping[str, Any] | None = None) -> dict[str, Mirror]:
    """Built-in mirrors with the config's ``[mirrors.NAME]`` applied, by id, in order.

    A ``[mirrors.NAME]`` whose NAME is a built-in id (or alias) overrides that mirror's
    url/name/region and keeps its aliases; any other NAME adds a mirror. The config has
    been validated (pdbsync.config.load), so ``url`` is present for a new one.
    """
    mirrors = {mirror.id: mirror for mirror in BUILTIN}
    for name, entry in (config_mirrors or {}).items():
        base = mirrors.get(canonical_id(name, mirrors) or "")
        entry = dict(entry) if isinstance(entry, Mapping) else {}
        url = entry.get("url") or (base.url if base else "")
        if url and not url.endswith("/"):
            url += "/"
        if base is not None:
            mirrors[base.id] = Mirror(
                base.id,
                entry.get("name", base.name),
                entry.get("region", base.region),
                url,
                base.aliases,
                builtin=False,
            )
        else:
            mirrors[name] = Mirror(
                name, entry.get("name", name), entry.get("region", ""), url, (), builtin=False
            )
    return mirrors


def canonical_id(name: str, mirrors: Mapping[str, Mirror] | None = None) -> str | None:
    """The id ``name`` stands for (an id or an alias, any case), or None if unknown."""
    known = mirrors if mirrors is not None else {m.id: m for m in BUILTIN}
    lowered = name.lower()
    for mirror in known.values():
        if lowered == mirror.id.lower() or lowered in mirror.aliases:
            return mirror.id
    return None


def unknown_mirror(name: str, mirrors: Mapping[str, Mirror]) -> str:
    """The message for a mirror name nobody knows, listing the ones that exist."""
    known = ", ".join(
        m.id + (f" ({', '.join(m.aliases)})" if m.aliases else "") for m in mirrors.values()
    )
    return f"unknown mirror {name!r}; known mirrors: {known}, or {AUTO!r}"


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a plain path inside a mirror's data tree, or None."""
    from pdbsync import paths

    if path.startswith("/"):
        return f"{path!r} starts with '/'; path is relative to the mirror's data tree"
    if paths.has_control_chars(path) or paths.escapes(path):
        return f"{path!r} is not a plain path inside the mirror's data tree (no '..')"
    return None
