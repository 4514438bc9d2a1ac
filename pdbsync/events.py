"""The event stream: one JSON object per line, every one in the same envelope.

Every event carries ``v`` (schema version), ``ts`` (RFC 3339 UTC), ``type``, ``name``
(the target; absent on run-level events) and ``message`` (what a person would read,
so a consumer can show events of types it does not know). The types and their fields
are documented in ``schemas/event.schema.json`` and docs/events.md.
"""

from __future__ import annotations

from typing import Any

from pdbsync.contracts import SCHEMA_VERSION
from pdbsync.times import utc_now  # the stamp every event carries (also imported from here)

#: All event types, in the order a target's events appear.
EVENT_TYPES = (
    "warning",  # before the run: something to know that does not stop it
    "run_started",
    "dry_run",
    "sync_started",
    "lock_wait",  # the target's dest is locked by another run (pdbsync.run.locks)
    "output",
    "progress",
    "retry",
    "plan",
    "part_finished",  # one part of a split target ended (its sync_finished comes once, last)
    "sync_finished",
    "run_finished",
    "plan_finished",
)


def make_event(
    event_type: str, name: str | None, message: str, ts: str | None = None, **fields: Any
) -> dict[str, Any]:
    """Build one event in the common envelope; ``fields`` are the type's own fields."""
    event: dict[str, Any] = {"v": SCHEMA_VERSION, "ts": ts or utc_now(), "type": event_type}
    if name is not None:
        event["name"] = name
    event["message"] = message
    event.update(fields)
    return event
