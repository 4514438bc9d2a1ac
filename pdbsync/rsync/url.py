"""The one grammar of an rsync source or destination, as rsync itself reads it.

rsync tells its operands apart by their first few characters (``main.c``:
``check_for_hostspec``): ``rsync://host[:port]/path`` and ``host::path`` talk to a
daemon, ``host:path`` (a colon before any slash) goes over a remote shell, anything
else is a local path. Every part of pdb-sync that looks inside a URL (the config's
check of a target's source, the per-host connection cap, a mirror's host, port and
module) reads it with :func:`parse`, so they cannot disagree about where a host ends.

The grammar is permissive about what a host may contain: the config check
(:func:`pdbsync.config.load.url_problem`) is where a host's characters are judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: rsync's daemon port when a URL gives none.
RSYNC_PORT = 873
#: The three kinds of operand rsync knows.
DAEMON, SSH, LOCAL = "daemon", "ssh", "local"

#: A host: an IPv6 address in brackets, or a run of characters without ``/`` ``:`` or
#: brackets (a name, an IPv4 address).
_HOST = r"(?P<host>\[[^\]/]+\]|[^\[\]/:]+)"
_SCHEME = "rsync://"
_RSYNC_URL = re.compile(rf"^rsync://{_HOST}(?::(?P<port>\d+))?/(?P<path>.*)$", re.DOTALL)
_DAEMON_URL = re.compile(rf"^{_HOST}::(?P<path>.*)$", re.DOTALL)
_SSH_URL = re.compile(rf"^{_HOST}:(?P<path>.*)$", re.DOTALL)


@dataclass(frozen=True)
class RsyncUrl:
    """One operand of rsync, taken apart.

    ``host`` is as written (an IPv6 address keeps its brackets; "" for a local path),
    ``port`` only what an ``rsync://`` URL gives (None: rsync's default), ``path``
    everything after the host part (for a daemon, the module and the path inside it;
    for a local path, the whole operand). ``scheme``: written as ``rsync://``.
    """

    kind: str
    host: str
    port: int | None
    path: str
    scheme: bool = False

    @property
    def is_daemon(self) -> bool:
        return self.kind == DAEMON

    @property
    def address(self) -> str:
        """The host without an IPv6 address's brackets, as a socket wants it."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def module(self) -> str:
        """The daemon module (``ftp_data`` of ``rsync://h:33444/ftp_data/x``)."""
        return self.path.split("/", 1)[0]


def parse(url: str) -> RsyncUrl | None:
    """``url`` taken apart by rsync's rules; None for an ``rsync://`` URL that is not
    one (no ``/`` after the host, a port that is not a number, an empty host).

    ``host::path`` wins over ``host:path`` (the second colon makes it a daemon), and a
    colon after the first ``/`` is part of a local path (``./a:b``), as in rsync.
    """
    if url.startswith(_SCHEME):
        match = _RSYNC_URL.match(url)
        if match is None:
            return None
        port = match["port"]
        return RsyncUrl(DAEMON, match["host"], int(port) if port else None, match["path"], True)
    match = _DAEMON_URL.match(url)
    if match is not None:
        return RsyncUrl(DAEMON, match["host"], None, match["path"])
    match = _SSH_URL.match(url)
    if match is not None:
        return RsyncUrl(SSH, match["host"], None, match["path"])
    return RsyncUrl(LOCAL, "", None, url)


def daemon(url: str) -> RsyncUrl | None:
    """``url`` taken apart if it names an rsync daemon (either form), else None."""
    parsed = parse(url)
    return parsed if parsed is not None and parsed.is_daemon else None
