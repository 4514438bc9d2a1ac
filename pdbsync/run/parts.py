"""One split target's result and plan from its parts' (the collector's side of split).

A split target runs as several jobs (pdbsync.split.parts makes them); the run reports it
as one target, so when its last part ends the collector folds the parts' results, their
rsync stats and their plans into one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pdbsync.run.jobs import Job
from pdbsync.times import seconds_between

_STATUS_RANK = {"failed": 0, "cancelled": 1, "skipped": 2, "success": 3}
#: --stats fields that are not sums over the parts.
_MAX_STATS = ("file_list_generation_s", "file_list_transfer_s")


def merge_stats(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One ``--stats`` block for the whole target from its parts' ({} unless every part
    has one): counts and sizes summed, the transfer root ``.`` (which every part lists)
    counted once, ``speedup`` recomputed, list times the longest part's."""
    if not parts or any(not stats for stats in parts):
        return {}
    merged: dict[str, Any] = {}
    for stats in parts:
        for key, value in stats.items():
            if key == "speedup":
                continue
            if isinstance(value, dict):
                into = merged.setdefault(key, {})
                for kind, count in value.items():
                    into[kind] = into.get(kind, 0) + count
            elif key in _MAX_STATS:
                merged[key] = max(merged.get(key, value), value)
            elif isinstance(value, int | float):
                merged[key] = merged.get(key, 0) + value
    extra = len(parts) - 1
    if "files_total" in merged:
        merged["files_total"] -= extra
    if merged.get("files_total_by_type", {}).get("dir"):
        merged["files_total_by_type"]["dir"] -= extra
    if "speedup" in parts[0]:
        wire = merged.get("bytes_sent", 0) + merged.get("bytes_received", 0)
        merged["speedup"] = round(merged.get("total_size", 0) / wire, 2) if wire else 0.0
    return merged


def merge_results(jobs: Sequence[Job], results: Sequence[Any]) -> Any:
    """The target's one result from its parts' (``jobs[i]`` produced ``results[i]``):
    success only if every part succeeded; otherwise the worst status, and the error
    and exit code of the first part that has it, named (``part 2/4: ...``)."""
    from pdbsync.report.summary import SyncResult

    pairs = sorted(zip(jobs, results, strict=True), key=lambda pair: pair[0].part)
    status = min((r.status for _, r in pairs), key=lambda s: _STATUS_RANK[s])
    culprit = next(((j, r) for j, r in pairs if r.status == status), pairs[0])
    first_job, first = pairs[0]
    started = [r.started_at for _, r in pairs if r.started_at]
    finished = [r.finished_at for _, r in pairs if r.finished_at]
    duration = max((r.duration_s for _, r in pairs), default=0.0)
    if started and finished:
        duration = max(duration, seconds_between(min(started), max(finished)))
    files = [r.files_transferred for _, r in pairs if r.files_transferred is not None]
    sizes = [r.bytes_transferred for _, r in pairs if r.bytes_transferred is not None]
    error = None
    if status != "success":
        job, result = culprit
        error = f"part {job.part}/{job.parts}: {result.error or result.exit_meaning}"
    code = culprit[1].exit_code if status != "success" else first.exit_code
    return SyncResult(
        name=first.name,
        url=first_job.url,
        dest=first.dest,
        status=status,
        exit_code=code,
        exit_meaning=culprit[1].exit_meaning if status != "success" else first.exit_meaning,
        error=error,
        attempts=max(r.attempts for _, r in pairs),
        started_at=min(started) if started else None,
        finished_at=max(finished) if finished else None,
        duration_s=round(duration, 3),
        files_transferred=sum(files) if files else None,
        bytes_transferred=sum(sizes) if sizes else None,
        stats=merge_stats([r.stats for _, r in pairs]),
        mirror=first.mirror,
        mirror_reason=first.mirror_reason,
        unlocked=first_job.unlocked,
        **first.update_fields(),
        parts=[
            {
                "part": job.part,
                "status": result.status,
                "exit_code": result.exit_code,
                "error": result.error,
                "attempts": result.attempts,
                "duration_s": result.duration_s,
                "files_transferred": result.files_transferred,
                "bytes_transferred": result.bytes_transferred,
                "expected_bytes": None if job.expected is None else int(job.expected),
                "slot": result.slot,
                "attempt_log": result.attempt_log,
            }
            for job, result in pairs
        ],
    )


def merge_plans(job: Job, plans: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One target's plan from its parts' plans: numbers summed, the transfer root
    counted once (in ``files_total``, and in ``to_create`` when the dest does not exist
    yet, since every part would create it)."""
    merged: dict[str, Any] = {
        "delete_enabled": any(p["delete_enabled"] for p in plans),
        "deletion_sample": [path for p in plans for path in p["deletion_sample"]][:10],
    }
    for key in ("files_total", "total_size", "to_create", "to_update", "to_delete"):
        values = [p[key] for p in plans]
        merged[key] = None if any(v is None for v in values) else sum(values)
    values = [p["bytes_to_transfer"] for p in plans]
    merged["bytes_to_transfer"] = None if any(v is None for v in values) else sum(values)
    extra = len(plans) - 1
    if merged["files_total"] is not None:
        merged["files_total"] -= extra
    if merged["to_create"] is not None and not os.path.lexists(job.dest):
        merged["to_create"] -= extra
    return merged
