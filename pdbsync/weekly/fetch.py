"""Reading the status lists from the target's own mirror, over rsync.

Two connections at most before a weekly run decides: ``rsync --list-only`` of the
``status/`` folder (which dated weeks the mirror has), then one ``-R`` fetch of the
needed weeks' lists into a temporary directory. Any failure is a
:class:`~pdbsync.weekly.status.ListProblem`: the run falls back to a full sync and says
why, it never fails because of the lists.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pdbsync.weekly.status import LISTS, ListProblem, Week, dated_folders, parse_list

#: Seconds of silence after which a status-list rsync gives up (``--timeout``).
IO_TIMEOUT_S = 60
#: Remote source arguments per rsync connection. rsync 3.5 refuses a daemon command line
#: of about a thousand arguments, the options it passes to the server included
#: (``args[] overflowed in do_cmd()``; 994 sources with ``-aR`` and two options worked
#: here, 1,000 did not): half of that leaves room for a target's options.
MAX_SOURCES = 500


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


def list_weeks(rsync: str, status_url: str) -> list[str]:
    """The dated folders under ``status_url`` (``.../status/``), oldest first."""
    out = _run(
        [rsync, "--list-only", f"--timeout={IO_TIMEOUT_S}", "--", status_url.rstrip("/") + "/"],
        f"list the status folders at {status_url}",
    )
    folders = dated_folders(out.splitlines())
    if not folders:
        raise ListProblem(f"no dated status folders (YYYYMMDD) at {status_url}")
    return folders


def fetch_weeks(rsync: str, status_url: str, names: Sequence[str]) -> list[Week]:
    """The lists of the weeks ``names``, parsed (ListProblem if one is missing or bad)."""
    if not names:
        return []
    base = status_url.rstrip("/")
    sources = [f"{base}/./{name}/{kind}.pdb" for name in names for kind in LISTS]
    with tempfile.TemporaryDirectory(prefix="pdb-sync-status-") as tmp:
        for start in range(0, len(sources), MAX_SOURCES):
            _run(
                [
                    rsync,
                    "-rR",
                    f"--timeout={IO_TIMEOUT_S}",
                    "--",
                    *sources[start : start + MAX_SOURCES],
                    tmp + "/",
                ],
                f"fetch the status lists from {status_url}",
            )
        weeks = []
        for name in names:
            lists = {}
            for kind in LISTS:
                path = Path(tmp) / name / f"{kind}.pdb"
                try:
                    text = path.read_bytes().decode("ascii")
                except (OSError, UnicodeDecodeError) as exc:
                    raise ListProblem(
                        f"status list {name}/{kind}.pdb is unreadable: {exc}"
                    ) from None
                lists[kind] = tuple(parse_list(text, f"{name}/{kind}.pdb"))
            weeks.append(Week(name, **lists))
    return weeks
