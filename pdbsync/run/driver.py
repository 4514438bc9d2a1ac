"""One run, from resolved jobs to a validated, written summary; knows nothing of argparse,
of renderers or of signals.

Events go to ``on_event`` (a callable; if it also has ``flush()``, that is called after
each burst of events); cancellation comes from ``cancel`` (anything with ``is_set()``).
The public entry points built on this are in :mod:`pdbsync.api`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pdbsync import __version__, contracts
from pdbsync.batch.origin import RunPlace
from pdbsync.events import make_event, utc_now
from pdbsync.outputs import OutputWriteError
from pdbsync.report.summary import Summary, summary_json, validate_summary, write_atomically
from pdbsync.run.collector import CancelFlag, Collector, EventSink
from pdbsync.run.deadline import Deadline
from pdbsync.run.jobs import Job
from pdbsync.run.plan_mode import PlanSummary


@dataclass(frozen=True)
class RunSettings:
    """How to run the jobs (from the command line, the config or a library call)."""

    parallel: int = 1
    summary_path: Path | None = None
    fail_fast: str | None = None
    start_method: str | None = None  # None: fork (see pdbsync.run.supervisor.start_method)
    deadline: Deadline | None = None  # --deadline (pdbsync.run.deadline)
    place: RunPlace | None = None  # host, shard, Slurm ids, for run_started and the summary
    max_per_host: int | None = None  # rsyncs per mirror host at once (pdbsync.rsync.hosts)


class _RunSummary(Protocol):
    write_error: str | None

    def to_dict(self) -> dict[str, Any]: ...


_SummaryT = TypeVar("_SummaryT", bound=_RunSummary)


def _discard(_event: dict[str, Any]) -> None:
    """The event sink of a caller that wants none."""


def run_sync(
    jobs: list[Job],
    settings: RunSettings,
    on_event: EventSink | None = None,
    cancel: CancelFlag | None = None,
) -> Summary:
    """Run ``jobs`` on the pool, send every event to ``on_event``, write the summary.

    A set ``cancel`` stops the run cleanly: unfinished targets end up ``cancelled`` and
    the summary is still built and written.
    """
    return _run(
        jobs,
        settings,
        on_event or _discard,
        cancel,
        started_message=f"Syncing {_targets(jobs)} (parallel {_parallel(jobs, settings)})...",
        build=lambda **run: Summary(place=settings.place, **run),
        schema="summary",
        finished=lambda data: make_event(
            "run_finished", None, _finished_message(data), summary=data
        ),
    )


def run_plan(
    jobs: list[Job],
    settings: RunSettings,
    on_event: EventSink | None = None,
    cancel: CancelFlag | None = None,
) -> PlanSummary:
    """Run plan ``jobs`` (``Job.plan``) on the pool like a sync; write the plan summary.

    Same pool, collector, retries and cancellation as :func:`run_sync`; the worker sends
    each target's ``plan`` event before its result, and the plan summary (checked
    against ``schemas/plan.schema.json``) replaces the sync summary.
    """
    plans: dict[str, dict[str, Any]] = {}
    sink = on_event or _discard

    def keep_plans(event: dict[str, Any]) -> None:
        if event["type"] == "plan":
            plans[event["name"]] = event
        sink(event)

    keep_plans.flush = getattr(sink, "flush", None) or (lambda: None)  # type: ignore[attr-defined]

    def finished(data: dict[str, Any]) -> dict[str, Any]:
        totals = data["totals"]
        message = (
            f"Plan finished: {totals['planned']}/{totals['targets']} planned; would create "
            f"{totals['to_create']:,}, update {totals['to_update']:,}, delete "
            f"{totals['to_delete']:,}, transfer {totals['bytes_to_transfer']:,} bytes"
        )
        return make_event("plan_finished", None, message, plan=data)

    return _run(
        jobs,
        settings,
        keep_plans,
        cancel,
        started_message=(
            f"Planning {_targets(jobs)} (dry run, parallel {_parallel(jobs, settings)})..."
        ),
        build=lambda **run: PlanSummary(plans=plans, place=settings.place, **run),
        schema="plan",
        finished=finished,
    )


def _run(
    jobs: list[Job],
    settings: RunSettings,
    emit: EventSink,
    cancel: CancelFlag | None,
    *,
    started_message: str,
    build: Callable[..., _SummaryT],
    schema: str,
    finished: Callable[[dict[str, Any]], dict[str, Any]],
) -> _SummaryT:
    """What a sync and a plan share: announce, run the pool, build the summary with
    ``build``, validate it against ``schema``, write it, and send the ``finished`` event.

    The summary is validated before anything shows it, so a schema bug never reaches a
    reader. The file is written before the final event, so the ``exit_code`` that event
    carries is always the run's: a failed write turns a 0 into 1 (a failed run or a
    signal's code stays) and the summary's ``write_error`` says why.
    """
    flush = getattr(emit, "flush", None) or (lambda: None)
    started_at = utc_now()
    started = time.monotonic()
    emit(
        make_event(
            "run_started",
            None,
            started_message,
            targets=list(dict.fromkeys(job.name for job in jobs)),  # parts: once
            parallel=settings.parallel,
            version=__version__,
            **(settings.place or RunPlace()).fields(),
            deadline=settings.deadline.to_dict() if settings.deadline is not None else None,
            mirrors={
                job.name: {"mirror": job.mirror, "reason": job.mirror_reason, "url": job.url}
                for job in jobs
            },
        )
    )
    flush()
    collector = Collector(
        jobs=jobs,
        parallel=settings.parallel,
        emit=emit,
        cancel=cancel,
        fail_fast=settings.fail_fast,
        start_method=settings.start_method,
        deadline=settings.deadline,
        max_per_host=settings.max_per_host,
        on_transfers_started=lambda: contracts.warm_in_background(schema),
    )
    results = collector.run()
    summary = build(
        results=results,
        parallel=settings.parallel,
        started_at=started_at,
        finished_at=utc_now(),
        duration_s=time.monotonic() - started,
        interrupted=collector.interrupted,
    )
    data = summary.to_dict()
    validate_summary(data, schema)
    if settings.summary_path is not None:
        try:
            write_atomically(settings.summary_path, summary_json(data))
        except OutputWriteError as exc:
            summary.write_error = exc.message
            data = summary.to_dict()
    emit(finished(data))
    flush()
    return summary


def _targets(jobs: list[Job]) -> str:
    count = len({job.name for job in jobs})  # a split target's parts count once
    parts = sum(1 for job in jobs if job.parts)
    text = f"{count} target{'s' if count != 1 else ''}"
    return text + (f" ({parts} parts)" if parts else "")


def _parallel(jobs: list[Job], settings: RunSettings) -> int:
    return min(settings.parallel, len(jobs))


def _finished_message(data: dict) -> str:
    totals = data["totals"]
    return (
        f"Finished: {totals['succeeded']}/{totals['total']} succeeded, "
        f"{totals['failed']} failed, {totals['cancelled']} cancelled, "
        f"{totals['skipped']} skipped in {data['timings']['total_s']:.2f}s"
    )
