"""One writing and one reading of the times pdb-sync stamps on events, summaries and the
history, and of the times people and schedulers hand it.

pdb-sync writes RFC 3339 UTC with milliseconds (``2026-11-27T10:58:30.123Z``). Reading
goes through :func:`parse_iso` (ISO 8601 as Python's ``datetime.fromisoformat`` takes
it: ``Z`` or an offset such as ``+02:00``, or none), so every reader accepts and refuses
the same texts. What a time without an offset means depends on who wrote it, so that is
the caller's choice, made once here:

- a stamp in pdb-sync's own files (:func:`parse_utc`) must carry its zone: pdb-sync
  never writes one without, and guessing (UTC? this machine's zone?) would make an age
  or a ``--max-age`` check wrong by hours without a word;
- a time a person types (``--deadline 2026-01-01T06:00``) or squeue prints is local
  time (:func:`unix_seconds`), as they mean it.

Refusals are ValueError saying what was given; callers name the file, key or flag.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utc_now() -> str:
    """The current time as RFC 3339 UTC with milliseconds, e.g. 2026-11-27T10:58:30.123Z."""
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    """``moment`` (aware) as pdb-sync writes times: UTC, milliseconds, ``Z``."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """``text`` as an ISO 8601 date and time, with or without an offset (naive then);
    ValueError saying what was given. ``Z`` is UTC; ASCII digits only."""
    try:
        if isinstance(text, str) and text.isascii():
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"expected an ISO 8601 time such as 2026-01-01T12:00:00Z, got {text!r}")


def parse_utc(text: str) -> datetime:
    """A time stamp as pdb-sync writes it (``...Z`` or with an offset), aware; ValueError
    for anything else, a time without its zone included."""
    moment = parse_iso(text)
    if moment.tzinfo is None:
        raise ValueError(f"expected a time with its zone (Z or +HH:MM), got {text!r}")
    return moment


def is_utc_stamp(value: Any) -> bool:
    """Whether ``value`` is a string :func:`parse_utc` reads."""
    try:
        parse_utc(value)
    except ValueError:
        return False
    return True


def seconds_between(start: str, end: str) -> float:
    """Seconds from stamp ``start`` to stamp ``end``, never below 0 (clocks of several
    machines, a shard's stamps, may disagree)."""
    return max(0.0, (parse_utc(end) - parse_utc(start)).total_seconds())


def unix_seconds(moment: datetime) -> float:
    """``moment`` as Unix time; one without a zone is this machine's local time.
    ValueError when the local zone cannot place it (year 1 east of UTC, say)."""
    try:
        return (moment if moment.tzinfo else moment.astimezone()).timestamp()
    except (OverflowError, ValueError, OSError):
        raise ValueError(f"{moment.isoformat()} is not a time this machine can represent") from None
