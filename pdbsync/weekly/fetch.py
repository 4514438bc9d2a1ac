"""Reading the status lists from the target's own mirror, over rsync.

One connection before a weekly run decides: the mirror's dated ``status/`` folders
synced into a cache in the state directory (:class:`StatusCache`), which says both
which weeks the mirror has and what each lists. Any failure is a
:class:`~pdbsync.weekly.status.ListProblem`: the run falls back to a full sync and says
why, it never fails because of the lists.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from pdbsync.digest import blake2b
from pdbsync.rsync import url as rsync_url
from pdbsync.weekly.status import LISTS, ListProblem, Week, dated_folders, parse_list

#: Seconds of silence after which a status-list rsync gives up (``--timeout``).
IO_TIMEOUT_S = 60
#: Remote source arguments per rsync connection. rsync 3.5 refuses a daemon command line
#: of about a thousand arguments, the options it passes to the server included
#: (``args[] overflowed in do_cmd()``; 994 sources with ``-aR`` and two options worked
#: here, 1,000 did not): half of that leaves room for a target's options.
MAX_SOURCES = 500
#: Turns off Nagle's algorithm on the client's socket to the daemon.
NO_DELAY = "--sockopts=TCP_NODELAY"


def latency_flags(url: str, flags: Sequence[str] = ()) -> tuple[str, ...]:
    """Options for a short rsync connection to ``url`` that waits on round trips, not
    bytes (the decision's, a week's transfer): against a daemon, ``TCP_NODELAY``. Without
    it the client's small protocol writes wait for the daemon's delayed ACK (~40 ms on
    Linux) during the handshake (docs/benchmarks.md). A user's own ``--sockopts`` wins.
    """
    if rsync_url.daemon(url) is None or any(flag.startswith("--sockopts") for flag in flags):
        return ()
    return (NO_DELAY,)


def _run(argv: Sequence[str], what: str) -> str:
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=IO_TIMEOUT_S * 3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ListProblem(f"cannot {what}: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line]
        detail = lines[0] if lines else f"rsync exit {done.returncode}"
        raise ListProblem(f"cannot {what}: {detail}")
    return done.stdout.decode("utf-8", "replace")


class StatusCache:
    """The status lists of the mirrors, kept in the state directory between runs.

    One connection a run: ``rsync -r --delete`` of the dated folders' ``*.pdb`` under
    ``STATUS_URL`` into ``DIR/<hash of the url>/``. The first run fetches every dated
    folder the mirror keeps (a few small files each); later ones only walk them and fetch
    the new week's. Afterwards the cache is exactly the mirror's dated folders: which
    weeks it has (:meth:`list_weeks`), and what each says (:meth:`fetch_weeks`, no
    connection).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def folder(self, status_url: str) -> Path:
        digest = blake2b(status_url.encode(), digest_size=8).hexdigest()  # no hashlib: digest.py
        return self.directory / digest

    def list_weeks(self, rsync: str, status_url: str) -> list[str]:
        """Bring the cache of ``status_url`` up to date; its dated folders, oldest first."""
        cache = self.folder(status_url)
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ListProblem(f"cannot keep the status lists in {cache}: {exc.strerror}") from None
        _run(
            [
                rsync,
                "-r",
                "-t",
                "--delete",
                f"--timeout={IO_TIMEOUT_S}",
                "--include=/[0-9]*/",
                "--include=/[0-9]*/*.pdb",
                "--exclude=*",
                *latency_flags(status_url),
                "--",
                status_url.rstrip("/") + "/",
                f"{cache}/",
            ],
            f"list the status folders at {status_url}",
        )
        listing = [f"d {entry.name}" for entry in cache.iterdir() if entry.is_dir()]
        folders = dated_folders(listing)
        if not folders:
            raise ListProblem(f"no dated status folders (YYYYMMDD) at {status_url}")
        return folders

    def fetch_weeks(self, _rsync: str, status_url: str, names: Sequence[str]) -> list[Week]:
        """The lists of the weeks ``names`` (from the cache :meth:`list_weeks` just
        brought up to date); ListProblem if one is missing or bad."""
        cache = self.folder(status_url)
        weeks = []
        for name in names:
            lists = {}
            for kind in LISTS:
                try:
                    text = (cache / name / f"{kind}.pdb").read_bytes().decode("ascii")
                except (OSError, UnicodeDecodeError) as exc:
                    problem = exc.strerror if isinstance(exc, OSError) else str(exc)
                    raise ListProblem(
                        f"status list {name}/{kind}.pdb cannot be read from {status_url}: {problem}"
                    ) from None
                lists[kind] = tuple(parse_list(text, f"{name}/{kind}.pdb"))
            weeks.append(Week(name, **lists))
        return weeks
