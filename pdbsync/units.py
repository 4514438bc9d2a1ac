"""Numbers for people: byte sizes, rates and durations as the outputs print them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Durations from 100 years up print as ``>100y``: a summary file is validated, not
#: trusted to be sane, and a duration of 1e305 s would otherwise print 300 digits.
LONGEST_SHOWN_S = 100 * 365.25 * 86400
#: What a duration at or above :data:`LONGEST_SHOWN_S` prints as.
BEYOND_LONGEST = ">100y"


def seconds_text(seconds: float, decimals: int = 1, unit: str = "s") -> str:
    """``12.3s`` (``unit`` ``" s"`` gives ``12.3 s``); ``>100y`` from 100 years up (and
    for infinity), ``?`` for NaN: the same bound in text, Markdown and ``status``."""
    if math.isnan(seconds):
        return "?"
    if seconds >= LONGEST_SHOWN_S:
        return BEYOND_LONGEST
    return f"{seconds:.{decimals}f}{unit}"


def junit_seconds(seconds: float | None) -> str:
    """A JUnit ``time`` attribute: a plain decimal (the JUnit XSD allows nothing else),
    so a duration beyond :data:`LONGEST_SHOWN_S` is written as that bound."""
    value = seconds or 0.0
    if math.isnan(value):
        value = 0.0
    return f"{min(value, LONGEST_SHOWN_S):.3f}"


def human_bytes(count: float | None) -> str:
    """``5.6 GB``-style sizes in powers of 1000, the unit base of rsync's ``-h``."""
    value = float(count or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def human_rate(count: float | None, seconds: float) -> str:
    """``41.0 MB/s``: ``count`` bytes over ``seconds`` (a zero duration counts as 1 ms)."""
    return f"{human_bytes((count or 0) / max(seconds, 0.001))}/s"


def transfer_details(stats: Mapping[str, Any], seconds: float) -> str:
    """The key ``--stats`` numbers of one target on one line, for ``[name] Completed``.

    ``transferred 615 files, 2.8 MB at 1.3 MB/s; created 1,236, deleted 5; source
    1,236 files, 2.8 MB``. Parts rsync did not report are left out, so a run without
    stats (an rsync that failed before its summary) gives an empty string.
    """
    parts = []
    if "files_transferred" in stats:
        size = stats.get("transferred_size", 0)
        parts.append(
            f"transferred {stats['files_transferred']:,} files, {human_bytes(size)} "
            f"at {human_rate(size, seconds)}"
        )
    changes = [
        f"{label} {stats[key]:,}"
        for key, label in (("files_created", "created"), ("files_deleted", "deleted"))
        if key in stats
    ]
    if changes:
        parts.append(", ".join(changes))
    if "files_total" in stats:
        parts.append(
            f"source {stats['files_total']:,} files, {human_bytes(stats.get('total_size'))}"
        )
    return "; ".join(parts)


def time_text(fields: Mapping[str, Any]) -> str:
    """``eta 0:01:23``, or ``in 0:00:09`` at 100%: rsync then prints the time the
    transfer took in that column, not an estimate."""
    word = "in" if fields["percent"] == 100 else "eta"
    return f"{word} {fields['eta']}"


def progress_text(fields: Mapping[str, Any]) -> str:
    """``45% 10.20MB/s eta 0:01:23 (1.2 MB, 12 files, 100/2,000 to check)``; at 100%
    ``in 0:00:09`` instead of ``eta`` (:func:`time_text`)."""
    text = f"{fields['percent']}% {fields['rate']} {time_text(fields)} ("
    text += human_bytes(fields["bytes"])
    if fields.get("files_transferred") is not None:
        text += f", {fields['files_transferred']:,} files"
    if fields.get("files_to_check") is not None and fields.get("files_total") is not None:
        text += f", {fields['files_to_check']:,}/{fields['files_total']:,} to check"
    return text + ")"
