"""``pdb-sync status`` and ``history``: the history (pdbsync.store.history) read for people
and monitors.

Pure functions over the history's per-target index and the config's target names; the command line
(pdbsync.cli.status) loads both and prints what these return.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pdbsync.times import parse_utc
from pdbsync.units import LONGEST_SHOWN_S, human_bytes, seconds_text

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``36h``, ``2d``, ``90m``, ``1d12h``, ``1w``, ``45s``; ValueError otherwise.

    A unit is required: a bare ``36`` could mean hours to one reader and seconds to the
    next, and a monitor that is wrong by a factor of 3600 is worse than none.
    """
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(value + unit for value, unit in parts) != compact:
        raise ValueError(f"expected a duration such as 36h, 2d, 90m or 1d12h, got {text!r}")
    seconds = sum(float(value) * _UNIT_SECONDS[unit] for value, unit in parts)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0, got {text!r}")
    return seconds


def format_age(seconds: float) -> str:
    """``3d 4h``, ``5h 12m``, ``7m 3s``, ``12s``: two units are enough to judge staleness."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def format_duration(seconds: float | None) -> str:
    """``12.3s`` under a minute, else as an age (``3d 4h``); bounded as everywhere
    (pdbsync.units.seconds_text)."""
    if seconds is None:
        return "-"
    if seconds < 60 or not seconds < LONGEST_SHOWN_S:
        return seconds_text(seconds)
    return format_age(seconds)


@dataclass
class TargetStatus:
    """What ``status`` says about one target."""

    name: str
    in_config: bool
    last_run: dict[str, Any] | None
    last_success: dict[str, Any] | None
    last_failure: dict[str, Any] | None
    success_age_s: float | None  # seconds since the last success finished (None: never)
    stale: bool | None  # older than --max-age or never succeeded (None: no --max-age)
    #: a weekly target's ``last_full``, ``last_weekly`` and ``last_week`` (pdbsync.store.updates)
    updates: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.updates is None else {"updates": self.updates}
        return {
            **extra,
            "name": self.name,
            "in_config": self.in_config,
            "never_synced": self.last_run is None,
            "last_run": self.last_run,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
            "success_age_s": (
                round(self.success_age_s, 3) if self.success_age_s is not None else None
            ),
            "stale": self.stale,
        }


def target_statuses(
    states: Mapping[str, Mapping[str, Any]],
    config_names: Sequence[str],
    selected: Sequence[str],
    now: datetime,
    max_age_s: float | None = None,
) -> list[TargetStatus]:
    """One row per target: the selected names, else every config target (config order)
    followed by the targets the history knows that the config no longer has."""
    if selected:
        names = list(dict.fromkeys(selected))
    else:
        names = list(config_names) + sorted(set(states) - set(config_names))
    rows = []
    for name in names:
        state = states.get(name, {})
        success = state.get("last_success")
        age = (now - parse_utc(success["finished_at"])).total_seconds() if success else None
        stale = None
        # Targets gone from the config are shown but checked only when named: nobody
        # syncs them any more, so they would be stale forever.
        if max_age_s is not None and (selected or name in config_names):
            stale = age is None or age > max_age_s
        rows.append(
            TargetStatus(
                name=name,
                in_config=name in config_names,
                last_run=state.get("last_run"),
                last_success=success,
                last_failure=state.get("last_failure"),
                success_age_s=age,
                stale=stale,
            )
        )
    return rows


def add_updates(rows: Sequence[TargetStatus], states: Mapping[str, Mapping[str, Any]]) -> None:
    """Give each weekly target's row its update state (last full, last weekly, last week)."""
    for row in rows:
        state = states.get(row.name)
        if state is not None:
            row.updates = {key: state.get(key) for key in ("last_full", "last_weekly", "last_week")}


def _updates_note(name: str, updates: Mapping[str, Any], now: datetime) -> str:
    """``mmcif: weekly updates: last full 3d 2h ago, last weekly 5m ago, week 20261125``."""

    def ago(stamp: str | None) -> str:
        if not stamp:
            return "never"
        return f"{format_age((now - parse_utc(stamp)).total_seconds())} ago"

    week = updates.get("last_week") or "none"
    return (
        f"{name}: weekly updates: last full {ago(updates.get('last_full'))}, "
        f"last weekly {ago(updates.get('last_weekly'))}, applied through week {week}"
    )


def is_ready(rows: Sequence[TargetStatus]) -> bool:
    """False when a target that ``--max-age`` checks is stale (never, without it)."""
    return not any(row.stale for row in rows)


def _run_cell(entry: Mapping[str, Any] | None, now: datetime) -> str:
    if entry is None:
        return "never"
    age = format_age((now - parse_utc(entry["finished_at"])).total_seconds())
    text = f"{entry['status']} {age} ago"
    if entry["status"] == "failed":
        code = entry.get("exit_code")
        text += f" (exit {code}: {entry.get('exit_meaning')})" if code is not None else ""
    return text


def status_table(rows: Sequence[TargetStatus], now: datetime, max_age_s: float | None) -> str:
    """The text ``status`` prints: a table and, below it, notes on the targets that need
    attention (never synced, last run failed, stale, gone from the config)."""
    header = ("TARGET", "LAST RUN", "LAST SUCCESS", "TOOK", "FILES", "TRANSFERRED")
    table = [header]
    notes = []
    for row in rows:
        success = row.last_success
        table.append(
            (
                row.name,
                _run_cell(row.last_run, now),
                f"{format_age(row.success_age_s)} ago" if row.success_age_s is not None else "-",
                format_duration(success["duration_s"]) if success else "-",
                f"{success['files_transferred'] or 0:,}" if success else "-",
                human_bytes(success["bytes_transferred"]) if success else "-",
            )
        )
        if not row.in_config:
            notes.append(f"{row.name}: in the history but not in the config")
        if row.updates is not None:
            notes.append(_updates_note(row.name, row.updates, now))
        if row.last_run is None:
            if not row.stale:  # else the STALE note says it
                notes.append(f"{row.name}: never synced")
        elif row.last_run["status"] != "success":
            failure = row.last_failure if row.last_run["status"] == "failed" else row.last_run
            reason = (failure or {}).get("error") or (failure or {}).get("exit_meaning") or ""
            notes.append(f"{row.name}: last run {row.last_run['status']}: {reason}".rstrip(": "))
        if row.stale and max_age_s is not None:
            if row.success_age_s is None:
                notes.append(f"{row.name}: STALE: never synced")
            else:
                notes.append(f"{row.name}: STALE: last success older than {format_age(max_age_s)}")
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = []
    for line in table:
        cells = [f"{line[0]:<{widths[0]}}", f"{line[1]:<{widths[1]}}", f"{line[2]:<{widths[2]}}"]
        cells += [f"{cell:>{width}}" for cell, width in zip(line[3:], widths[3:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    if not rows:
        lines = ["No targets in the config and no runs recorded."]
    return "\n".join([*lines, "", *notes] if notes else lines) + "\n"


def history_lines(records: Sequence[Mapping[str, Any]]) -> str:
    """``history`` without a name: one line per run, newest first."""
    if not records:
        return "No runs recorded.\n"
    lines = []
    for record in records:
        counts: dict[str, int] = {}
        for entry in record["targets"]:
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        outcome = ", ".join(f"{count} {status}" for status, count in counts.items()) or "none"
        transferred = sum(entry.get("bytes_transferred") or 0 for entry in record["targets"])
        line = (
            f"{record['started_at']}  {record['kind']:<4}  exit {record['exit_code']:<3}  "
            f"{format_duration(record['duration_s']):>7}  {len(record['targets'])} targets "
            f"({outcome})"
        )
        if record["kind"] == "sync":
            line += f", {human_bytes(transferred)}"
        if record.get("interrupted"):
            line += f", interrupted by {record['interrupted']}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def target_history_lines(name: str, entries: Sequence[Mapping[str, Any]]) -> str:
    """``history NAME``: one line per run of that target, newest first."""
    if not entries:
        return f"No runs of {name} recorded.\n"
    lines = []
    for entry in entries:
        line = (
            f"{entry['run_started_at']}  {entry['kind']:<4}  {entry['status']:<9}  "
            f"{format_duration(entry.get('duration_s')):>7}"
        )
        if entry["kind"] == "sync":
            line += (
                f"  {entry.get('files_transferred') or 0:,} files, "
                f"{human_bytes(entry.get('bytes_transferred'))}"
            )
        else:
            line += f"  would transfer {human_bytes(entry.get('bytes_to_transfer'))}"
        if entry["status"] == "failed":
            why = entry.get("error") or entry.get("exit_meaning")
            line += f"  exit {entry.get('exit_code')}: {why}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def now_utc() -> datetime:
    """The clock ages are measured against: aware, UTC, as the stamps read by parse_utc."""
    return datetime.now(UTC)
