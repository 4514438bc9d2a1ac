"""The rsync program: finding it, its version, and the floors pdb-sync holds it to.

pdb-sync needs rsync 3.1.0 (``--info=progress2``) and, as a client of public daemons,
refuses or warns about an rsync older than 3.4.0 (the CVE-2024-12084..12088 fixes) unless
``[sync] rsync_patched`` acknowledges a patched build. The rest of rsync's language lives
beside this module: :mod:`~pdbsync.rsync.argv` (the command line),
:mod:`~pdbsync.rsync.exits` (exit codes and failure reasons), :mod:`~pdbsync.rsync.output`
(progress, ``--stats`` and itemized lines), :mod:`~pdbsync.rsync.url` (its operands),
:mod:`~pdbsync.rsync.process` (signalling its process group).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pdbsync.errors import EnvironmentProblem

#: rsync 3.1.0 introduced --info=progress2, which progress events are parsed from.
MIN_RSYNC_VERSION = (3, 1, 0)
#: rsync 3.4.0 (January 2025) fixed CVE-2024-12084..12088: before it, a malicious or
#: compromised server (pdb-sync's position: it pulls from public daemons) can attack the
#: client, up to reading and writing files outside the destination.
SAFE_RSYNC_VERSION = (3, 4, 0)
RSYNC_CVES: tuple[tuple[str, str], ...] = (
    ("CVE-2024-12084", "heap overflow in checksum handling"),
    ("CVE-2024-12085", "uninitialised stack memory leak"),
    ("CVE-2024-12086", "a server can read arbitrary client files"),
    ("CVE-2024-12087", "path traversal via --inc-recursive symlinks"),
    ("CVE-2024-12088", "--safe-links bypass"),
)


@dataclass(frozen=True)
class RsyncInfo:
    """The rsync that will run: its path, version and the first line of ``--version``."""

    path: str
    version: tuple[int, ...]
    banner: str

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def check_rsync(rsync: str = "rsync") -> tuple[str, tuple[int, ...]]:
    """Find rsync and check it is new enough; returns (path, version)."""
    info = inspect_rsync(rsync)
    return info.path, info.version


@functools.lru_cache(maxsize=8)
def _version_text(path: str, identity: str) -> str:
    """``rsync --version`` of the binary ``path`` is, as ``identity`` (see
    :func:`_identity`) tells it apart: asked once per process (a run checks rsync's age
    and again its security floor), and remembered in the state directory between runs,
    since asking costs every run a fork of pdb-sync and rsync's start before its first
    transfer. Replacing or upgrading rsync changes its identity: it is asked again.
    """
    from pdbsync.store.history import read_cache, write_cache

    remembered = _remembered_version_path()
    cached = read_cache(remembered)
    key, _, text = (cached or "").partition("\n")
    if key == f"{path}\0{identity}":
        return text
    text = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    if cached is not None and re.search(_VERSION, text):  # only an answer worth keeping
        write_cache(remembered, f"{path}\0{identity}\n{text}")
    return text


def _identity(stat: os.stat_result) -> str:
    """What changes when a binary is replaced, upgraded or rewritten in place."""
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def _remembered_version_path() -> Path:
    from pdbsync.store.history import state_dir

    return state_dir() / "rsync-version"


_VERSION = r"version\s+v?(\d+)\.(\d+)\.(\d+)"


def inspect_rsync(rsync: str = "rsync") -> RsyncInfo:
    """Find rsync and check it is new enough for pdb-sync (not whether it is safe: see
    :func:`vulnerability`). EnvironmentProblem (exit 2) when it is missing or too old."""
    path = shutil.which(rsync)
    if path is None:
        raise EnvironmentProblem(
            f"rsync not found on PATH (looked for {rsync!r}); install it, e.g. "
            "'apt-get install rsync'"
        )
    try:
        out = _version_text(path, _identity(os.stat(path)))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"{path}: cannot run rsync --version: {exc}") from None
    match = re.search(_VERSION, out)
    if not match:
        raise EnvironmentProblem(f"{path}: cannot tell the rsync version from --version")
    version = tuple(int(part) for part in match.groups())
    if version < MIN_RSYNC_VERSION:
        need = ".".join(map(str, MIN_RSYNC_VERSION))
        have = ".".join(map(str, version))
        raise EnvironmentProblem(
            f"{path}: rsync {have} is too old; pdb-sync needs {need} or newer "
            "(for --info=progress2)"
        )
    banner = next((line.strip() for line in out.splitlines() if line.strip()), "")
    return RsyncInfo(path, version, banner)


#: Said with every finding of a vulnerable rsync (doctor, sync's warning and refusal).
UPGRADE_HELP = (
    "upgrade rsync to 3.4.0 or newer; if your distribution backported the fixes, say so "
    'with [sync] rsync_patched = "VERSION"'
)


def patched_matches(acknowledged: str, version: tuple[int, ...]) -> bool:
    """Whether ``[sync] rsync_patched`` applies to the rsync found.

    rsync's ``--version`` shows only the upstream version (3.2.7), never a distribution's
    revision (3.2.7-1+deb12u1), so the acknowledgement is matched on its upstream part:
    ``"3.2.7-1+deb12u1"`` and ``"3.2.7"`` both cover rsync 3.2.7, and stop applying the
    day another version is installed, which has to be judged anew.
    """
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", acknowledged)
    return bool(match) and tuple(int(p) for p in match[1].split(".")) == version


def vulnerability(version: tuple[int, ...], patched: str | None = None) -> str | None:
    """Why this rsync version is unsafe as a client of untrusted servers, or None.

    None when it is 3.4.0 or newer, or when ``patched`` (``[sync] rsync_patched``)
    acknowledges exactly this version as a patched build.
    """
    if version >= SAFE_RSYNC_VERSION:
        return None
    if patched and patched_matches(patched, version):
        return None
    have = ".".join(map(str, version))
    cves = ", ".join(cve for cve, _what in RSYNC_CVES)
    return (
        f"rsync {have} is older than 3.4.0 and has {cves} (a malicious or compromised "
        "server can attack this client)"
    )
