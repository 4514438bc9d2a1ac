"""Signalling an rsync and everything it started.

rsync is started as the leader of its own session (``start_new_session``), and the
receiver it forks stays in that process group, so stopping a transfer means signalling
the group: the worker does it when a stop signal reaches it, the supervisor (pdbsync.run.
supervisor) for an rsync whose worker died. Both go through :func:`kill_group`.
"""

from __future__ import annotations

import os
from contextlib import suppress


def kill_group(pgid: int, signum: int) -> None:
    """Signal rsync's whole process group, or the lone process if the group is gone
    (or not ours to signal); a process already gone is no error."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        kill_process(pgid, signum)


def kill_process(pid: int, signum: int) -> None:
    """Signal one process; one already gone (or not ours) is no error."""
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is left (one we may not signal counts)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
