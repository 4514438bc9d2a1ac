"""Full or weekly: what one weekly target's run does, and why.

Decided in the parent before the pool starts, from the target's state
(pdbsync.store.updates) and the mirror's status lists (pdbsync.weekly.fetch). A weekly
run is only ever an optimisation: whenever it cannot be sure what changed, the run is a
full sync and :attr:`Update.reason` says why (a fallback is never an error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pdbsync.times import parse_utc
from pdbsync.weekly.layouts import LAYOUTS, Layout
from pdbsync.weekly.status import ListProblem, Week, span, weeks_to_apply

FULL = "full"
WEEKLY = "weekly"


@dataclass(frozen=True)
class Update:
    """A weekly target's mode for this run, as the worker and the summary need it.

    ``weeks``: the weeks a weekly run applies, or (full) the dated weeks the mirror had
    when the run started, which a successful full sync counts as applied; ``newest``: the
    week recorded as applied after success (None: leave the record as it is);
    ``entries``: the ids whose files a weekly run transfers or deletes; ``counts``: ids
    per list over the weeks; ``reason``: why a weekly target runs a full sync.
    """

    mode: str
    layout: str
    key: str
    reason: str | None = None
    weeks: tuple[str, ...] = ()
    newest: str | None = None
    entries: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def layout_rules(self) -> Layout:
        return LAYOUTS[self.layout]

    def fields(self) -> dict[str, Any]:
        """The optional fields events and the summary carry (schemas/*.json)."""
        out: dict[str, Any] = {"mode": self.mode, "weeks": list(self.weeks)}
        if self.mode == WEEKLY:
            out.update(
                {kind: self.counts.get(kind, 0) for kind in ("added", "modified", "obsolete")}
            )
        if self.reason is not None:
            out["fallback_reason"] = self.reason
        return out


@dataclass(frozen=True)
class Inputs:
    """What the decision reads: the target's settings and its state."""

    layout: str
    key: str
    status_url: str
    full_every_s: float
    state: Mapping[str, Any] | None
    full_flag: bool = False
    delete_with_backup: bool = False


Lister = Callable[[str, str], list[str]]
Fetcher = Callable[[str, str, Sequence[str]], list[Week]]


def decide(given: Inputs, rsync: str, now: datetime, lister: Lister, fetcher: Fetcher) -> Update:
    """This run's :class:`Update` for one weekly target. ``lister`` gives the mirror's
    dated weeks, ``fetcher`` the lists of some (pdbsync.weekly.fetch.StatusCache)."""
    try:
        folders: list[str] | None = lister(rsync, given.status_url)
        listing_problem = None
    except ListProblem as exc:
        folders, listing_problem = None, str(exc)
    newest = folders[-1] if folders else None

    def full(reason: str) -> Update:
        return Update(FULL, given.layout, given.key, reason, tuple(folders or ()), newest)

    state = given.state or {}
    reason = _fallback_before_lists(given, state, now)
    if reason is None and listing_problem is not None:
        reason = listing_problem
    if reason is not None:
        return full(reason)
    assert folders is not None
    try:
        names = weeks_to_apply(folders, state["last_week"])
        weeks = fetcher(rsync, given.status_url, names)
    except ListProblem as exc:
        return full(str(exc))
    applied = span(weeks)
    return Update(
        WEEKLY,
        given.layout,
        given.key,
        None,
        applied.weeks,
        applied.weeks[-1] if applied.weeks else state["last_week"],
        applied.entries,
        applied.counts,
    )


def _fallback_before_lists(given: Inputs, state: Mapping[str, Any], now: datetime) -> str | None:
    """Why the run is a full sync whatever the lists say, or None."""
    if given.full_flag:
        return "--full was given"
    if given.delete_with_backup:
        return "delete and backup are both on: obsolete files are left to a full sync's --backup"
    last_full = state.get("last_full")
    if not last_full:
        return "no previous full sync of this destination from this source is recorded"
    try:
        age = (now - parse_utc(last_full)).total_seconds()
    except ValueError:
        return f"the recorded last full sync {last_full!r} is unreadable"
    if age > given.full_every_s:
        return f"the last full sync ({last_full}) is older than full_every"
    if not state.get("last_week"):
        return "no applied week is recorded (the last full sync could not list the weeks)"
    return None
