"""What weekly updates remember: per destination and source, the last week applied and
when the last full and weekly syncs succeeded.

Kept in ``updates.json`` beside the history (pdbsync.store.history), under the same lock
and replaced atomically. The key is the resolved destination and the source, not the
target's name: ``--pdb-dir`` or another config may give a name to another tree, and a
week applied to one tree says nothing about another. Written only after a transfer
succeeded, so an interrupted or failed run leaves the next one to retry the same weeks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from pdbsync.errors import PdbSyncError
from pdbsync.store import history
from pdbsync.store.history import StateError

UPDATES_FILE = "updates.json"


def update_key(resolved_dest: str, source: str) -> str:
    """The state key of a destination synced from a source."""
    return f"{resolved_dest} <- {source}"


def _read(directory: Path) -> dict[str, dict[str, Any]]:
    try:
        data = orjson.loads(history.read_file(directory / UPDATES_FILE))
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError):
        return {}  # unreadable state: every weekly target starts with a full sync
    entries = data.get("updates") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {key: value for key, value in entries.items() if isinstance(value, dict)}


def read_updates(directory: Path) -> dict[str, dict[str, Any]]:
    """Every key's state: ``name``, ``dest``, ``source``, ``last_week`` (``YYYYMMDD`` or
    None), ``last_full`` and ``last_weekly`` (UTC stamps or None). {} before the first."""
    return _read(directory)


def record_updates(directory: Path, changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge ``changes`` (key -> fields to set) into the file, under the state lock."""
    if not changes:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with history._locked(directory):
            entries = _read(directory)
            for key, fields in changes.items():
                entries.setdefault(key, {}).update(fields)
            payload = orjson.dumps(
                {"v": history.STATE_VERSION, "updates": entries}, option=orjson.OPT_INDENT_2
            )
            history._write(directory / UPDATES_FILE, payload)
    except StateError:
        raise
    except PdbSyncError as exc:
        raise StateError(exc.message) from None
    except OSError as exc:
        raise StateError(f"state {directory}: {exc.strerror or exc}") from None
