"""``mirror = "auto"``: pick the lowest-latency reachable mirror, and remember the pick.

Probing every mirror before every cron run would add seconds and hit four institutions'
daemons for nothing, so the choice and the measurements behind it are cached in the state
directory (``mirrors.json``) for ``[mirror_selection] latency_cache_ttl`` seconds. The
cache is only used for the same set of candidate mirrors (ids and URLs): editing
``[mirrors.NAME]`` measures again. An unreachable mirror is never chosen; the other
reachable ones, best first, become each auto target's fallbacks (see Job.next_mirror).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pdbsync import outputs
from pdbsync.errors import EnvironmentProblem, PdbSyncError
from pdbsync.mirrors import probe
from pdbsync.mirrors.registry import Mirror
from pdbsync.store.history import state_dir

CACHE_FILE = "mirrors.json"
#: Default ``[mirror_selection] latency_cache_ttl`` (seconds), as in the Rust pdb-sync.
DEFAULT_TTL = 3600
#: A mirror of the preferred region is taken if within this factor of the best latency.
REGION_TOLERANCE = 2.0
_REGION_ALIASES = {
    "us": "us",
    "usa": "us",
    "america": "us",
    "jp": "japan",
    "japan": "japan",
    "eu": "europe",
    "europe": "europe",
    "uk": "europe",
}


@dataclass(frozen=True)
class Choice:
    """The mirrors an auto target may use, best first, and why the first was chosen."""

    order: tuple[str, ...]  # reachable mirror ids, lowest latency first (preferred first)
    reason: str
    measurements: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    cached: bool = False
    cache_problem: str | None = None  # the cache could not be written (the run goes on)

    @property
    def chosen(self) -> str:
        return self.order[0]


def _region_matches(preferred: str, region: str) -> bool:
    preferred, region = preferred.lower(), region.lower()
    if preferred in region or (region and region in preferred):
        return True
    return _REGION_ALIASES.get(preferred, preferred) == _REGION_ALIASES.get(region, region)


def order_mirrors(
    results: Sequence[Mapping[str, Any]],
    registry: Mapping[str, Mirror],
    preferred_region: str | None = None,
) -> tuple[list[str], str]:
    """Reachable ids best first, and the reason for the first; [] when none is reachable.

    With a preferred region, its fastest mirror goes first when its latency is within
    :data:`REGION_TOLERANCE` times the best (the Rust pdb-sync's rule).
    """
    reachable = sorted(
        (r for r in results if r["reachable"] and r["latency_ms"] is not None),
        key=lambda r: r["latency_ms"],
    )
    if not reachable:
        return [], ""
    best = reachable[0]
    reason = f"lowest latency ({best['latency_ms']:g} ms) of {len(reachable)} reachable"
    if preferred_region:
        for result in reachable:
            mirror = registry.get(result["id"])
            if mirror is None or not _region_matches(preferred_region, mirror.region):
                continue
            if result["latency_ms"] <= best["latency_ms"] * REGION_TOLERANCE:
                reachable.remove(result)
                reachable.insert(0, result)
                if result is not best:
                    reason = (
                        f"preferred region {preferred_region!r} ({result['latency_ms']:g} ms, "
                        f"within {REGION_TOLERANCE:g}x of the best, {best['latency_ms']:g} ms)"
                    )
            break
    return [r["id"] for r in reachable], reason


def _candidates(registry: Mapping[str, Mirror]) -> list[list[str]]:
    return [[mirror.id, mirror.url] for mirror in registry.values()]


def _read_cache(path: Path, candidates: list[list[str]], ttl: float, now: float) -> dict | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("v") != 1 or data.get("candidates") != candidates:
        return None
    measured = data.get("measured_epoch")
    if not isinstance(measured, int | float) or not 0 <= now - measured < ttl:
        return None
    if not isinstance(data.get("measurements"), list):
        return None
    return data


def choose(
    registry: Mapping[str, Mirror],
    environ: Mapping[str, str],
    ttl: float = DEFAULT_TTL,
    preferred_region: str | None = None,
    *,
    now: Callable[[], float] = time.time,
    measure: Callable[[list[tuple[str, str]]], list[probe.ProbeResult]] = probe.probe_all,
) -> Choice:
    """The auto choice: from a fresh cache in the state directory, else measured now.

    Raises EnvironmentProblem (exit 2, nothing runs) when no mirror is reachable. A
    cache that cannot be written is reported in ``cache_problem``, not raised: the run
    can go on with what was measured.
    """
    path = state_dir(environ) / CACHE_FILE
    candidates = _candidates(registry)
    started = now()
    cached = _read_cache(path, candidates, ttl, started) if ttl > 0 else None
    if cached is not None:
        results = cached["measurements"]
        order, reason = order_mirrors(results, registry, preferred_region)
        if order:
            age = int(started - cached["measured_epoch"])
            return Choice(
                tuple(order),
                f"auto: {reason}, measured {age}s ago (cache {path})",
                tuple(results),
                cached=True,
            )
    results = [r.to_dict() for r in measure([(m.id, m.url) for m in registry.values()])]
    order, reason = order_mirrors(results, registry, preferred_region)
    if not order:
        why = "; ".join(f"{r['id']}: {r['error']}" for r in results)
        raise EnvironmentProblem(
            f"mirror auto: no mirror is reachable ({why}); check the network or name one "
            "with --mirror ID ('pdb-sync mirrors test' shows each)"
        )
    record = {
        "v": 1,
        "measured_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "measured_epoch": started,
        "ttl_s": ttl,
        "candidates": candidates,
        "chosen": order[0],
        "order": order,
        "measurements": results,
    }
    problem = None
    try:
        outputs.write_file(path, orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
    except PdbSyncError as exc:
        problem = exc.message
    return Choice(tuple(order), f"auto: {reason}, measured now", tuple(results), False, problem)
