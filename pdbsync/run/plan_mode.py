"""Plan mode: what a sync would do, from ``rsync --dry-run --stats --itemize-changes``.

A mirror admin runs ``--plan`` before a sync that might delete or re-download a large
part of the archive. Each target's plan comes from the same rsync (same flags, plus
``--dry-run --itemize-changes``) run by the same pool as a real sync, so the numbers
are what the real run will do, as long as the source does not change in between.

This module is the plan's data: the per-target ``plan`` event built in the worker,
and the plan summary built in the parent (``schemas/plan.schema.json``). It imports
nothing of the collector (pdbsync.run.collector), so the worker can use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pdbsync import __version__, contracts
from pdbsync.batch.origin import RunPlace
from pdbsync.errors import ExitCode
from pdbsync.events import make_event
from pdbsync.report.summary import RunOutcome, SyncResult, run_exit_code, status_counts
from pdbsync.rsync.argv import deletes
from pdbsync.rsync.output import ItemizedCounts
from pdbsync.run.jobs import Job
from pdbsync.units import human_bytes

#: The numbers a plan gives per target and in its totals (null when the plan failed).
PLAN_NUMBERS = ("files_total", "total_size", "to_create", "to_update", "to_delete")


def target_plan(job: Job, stats: Mapping[str, Any], counts: ItemizedCounts) -> dict[str, Any]:
    """One target's plan: source size from ``--stats``, changes from the itemized lines.

    ``to_delete`` is None when the target's flags do not delete (rsync then lists no
    deletions, and 0 would wrongly suggest it checked).
    """
    delete_enabled = deletes(job.argv)
    return {
        "delete_enabled": delete_enabled,
        "files_total": stats.get("files_total"),
        "total_size": stats.get("total_size"),
        "to_create": counts.created,
        "to_update": counts.updated,
        "to_delete": counts.deleted if delete_enabled else None,
        "bytes_to_transfer": stats.get("transferred_size"),
        "deletion_sample": list(counts.deletion_sample) if delete_enabled else [],
    }


def plan_event(name: str, plan: dict[str, Any]) -> dict[str, Any]:
    """The ``plan`` event of one target, with a one-line human message."""
    return make_event("plan", name, plan_message(plan), **plan)


def plan_message(plan: Mapping[str, Any]) -> str:
    """``Plan: create 5, update 2, delete 5; transfer 43.2 kB; source 1,236 files, 2.8 MB``."""
    delete = f"delete {plan['to_delete']:,}" if plan["delete_enabled"] else "delete off"
    text = (
        f"Plan: create {plan['to_create']:,}, update {plan['to_update']:,}, {delete}; "
        f"transfer {human_bytes(plan['bytes_to_transfer'])}; "
        f"source {_count(plan['files_total'])} files, {human_bytes(plan['total_size'])}"
    )
    if plan["to_delete"]:
        text += f"; WILL DELETE {plan['to_delete']:,} files"
    return text


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "?"


_EMPTY_PLAN = {
    "delete_enabled": None,
    "files_total": None,
    "total_size": None,
    "to_create": None,
    "to_update": None,
    "to_delete": None,
    "bytes_to_transfer": None,
    "deletion_sample": [],
}


@dataclass
class PlanSummary(RunOutcome):
    """Every target's plan (or why there is none) and the totals over all of them."""

    results: Sequence[SyncResult]
    plans: Mapping[str, Mapping[str, Any]]
    parallel: int
    started_at: str
    finished_at: str
    duration_s: float
    interrupted: str | None = None
    write_error: str | None = None  # why the plan file could not be written
    place: RunPlace | None = None  # its shard: a shard's plan never weighs the next split
    history_error: str | None = None  # why it could not be recorded (a warning only)

    @property
    def exit_code(self) -> ExitCode:
        planned = all(r.status == "success" and r.name in self.plans for r in self.results)
        return run_exit_code(self.interrupted, planned, self.write_error)

    def to_dict(self) -> dict[str, Any]:
        targets = []
        for result in self.results:
            plan = self.plans.get(result.name) if result.status == "success" else None
            targets.append(
                {
                    "name": result.name,
                    "url": result.url,
                    "dest": result.dest,
                    "status": result.status,
                    "exit_code": result.exit_code,
                    "exit_meaning": result.exit_meaning,
                    "error": result.error,
                    "duration_s": result.duration_s,
                    **{key: (plan or _EMPTY_PLAN)[key] for key in _EMPTY_PLAN},
                    **{k: v for k, v in result.update_fields().items() if v is not None},
                }
            )
        counts = status_counts(self.results)
        totals: dict[str, Any] = {
            "targets": len(targets),
            "planned": sum(1 for t in targets if t["files_total"] is not None),
            "failed": counts["failed"],
            "cancelled": counts["cancelled"],
            "skipped": counts["skipped"],
        }
        for key in (*PLAN_NUMBERS, "bytes_to_transfer"):
            totals[key] = sum(t[key] or 0 for t in targets)
        totals["targets_deleting"] = [t["name"] for t in targets if t["to_delete"]]
        return {
            "v": contracts.SCHEMA_VERSION,
            "kind": "plan",
            "version": __version__,
            "parallel": self.parallel,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "interrupted": self.interrupted,
            "exit_code": int(self.exit_code),
            "totals": totals,
            "timings": {"total_s": round(self.duration_s, 3)},
            "shard": (self.place or RunPlace()).fields()["shard"],
            "targets": targets,
        }
