"""One sync run from resolved jobs to a written summary; knows nothing of argparse."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pdbsync import __version__
from pdbsync.events import make_event, utc_now
from pdbsync.jobs import Job
from pdbsync.plan import PlanSummary, validate_plan
from pdbsync.render import Renderer
from pdbsync.runner import Collector, Interrupts, catching_signals
from pdbsync.summary import Summary, validate_summary, write_atomically, write_summary


@dataclass(frozen=True)
class RunSettings:
    """How to run the jobs (from the command line and config, resolved)."""

    parallel: int = 1
    summary_path: Path | None = None
    fail_fast: str | None = None


def run_sync(jobs: list[Job], settings: RunSettings, renderer: Renderer) -> Summary:
    """Run ``jobs`` on the pool, render every event, and write the validated summary.

    SIGINT and SIGTERM are caught for the duration: unfinished targets end up
    ``cancelled`` and the summary is still rendered and written.
    """
    started_at = utc_now()
    started = time.monotonic()
    names = [job.name for job in jobs]
    renderer.event(
        make_event(
            "run_started",
            None,
            f"Syncing {len(jobs)} target{'s' if len(jobs) != 1 else ''} "
            f"(parallel {min(settings.parallel, len(jobs))})...",
            targets=names,
            parallel=settings.parallel,
            version=__version__,
        )
    )
    renderer.flush()
    interrupts = Interrupts()
    with catching_signals(interrupts):
        collector = Collector(
            jobs=jobs,
            parallel=settings.parallel,
            emit=renderer.event,
            flush=renderer.flush,
            interrupts=interrupts,
            fail_fast=settings.fail_fast,
        )
        results = collector.run()
        summary = Summary(
            results=results,
            parallel=settings.parallel,
            started_at=started_at,
            finished_at=utc_now(),
            duration_s=time.monotonic() - started,
            interrupted=interrupts.first,
        )
        data = summary.to_dict()
        validate_summary(data)
        renderer.event(make_event("run_finished", None, _finished_message(data), summary=data))
        renderer.summary(data)
        renderer.flush()
        if settings.summary_path is not None:
            write_summary(settings.summary_path, data)
    return summary


def _finished_message(data: dict) -> str:
    totals = data["totals"]
    return (
        f"Finished: {totals['succeeded']}/{totals['total']} succeeded, "
        f"{totals['failed']} failed, {totals['cancelled']} cancelled, "
        f"{totals['skipped']} skipped in {data['timings']['total_s']:.2f}s"
    )


def run_plan(jobs: list[Job], settings: RunSettings, renderer: Renderer) -> PlanSummary:
    """Run plan ``jobs`` (``Job.plan``) on the pool like a sync; render and write the plan.

    Same pool, collector, retries and signal handling as :func:`run_sync`; the worker
    sends each target's ``plan`` event before its result, and the plan summary (checked
    against ``schemas/plan.schema.json``) replaces the sync summary.
    """
    started_at = utc_now()
    started = time.monotonic()
    renderer.event(
        make_event(
            "run_started",
            None,
            f"Planning {len(jobs)} target{'s' if len(jobs) != 1 else ''} "
            f"(dry run, parallel {min(settings.parallel, len(jobs))})...",
            targets=[job.name for job in jobs],
            parallel=settings.parallel,
            version=__version__,
        )
    )
    renderer.flush()
    plans: dict[str, dict[str, Any]] = {}

    def emit(event: dict[str, Any]) -> None:
        if event["type"] == "plan":
            plans[event["name"]] = event
        renderer.event(event)

    interrupts = Interrupts()
    with catching_signals(interrupts):
        collector = Collector(
            jobs=jobs,
            parallel=settings.parallel,
            emit=emit,
            flush=renderer.flush,
            interrupts=interrupts,
            fail_fast=settings.fail_fast,
        )
        results = collector.run()
        summary = PlanSummary(
            results=results,
            plans=plans,
            parallel=settings.parallel,
            started_at=started_at,
            finished_at=utc_now(),
            duration_s=time.monotonic() - started,
            interrupted=interrupts.first,
        )
        data = summary.to_dict()
        validate_plan(data)
        totals = data["totals"]
        message = (
            f"Plan finished: {totals['planned']}/{totals['targets']} planned; would create "
            f"{totals['to_create']:,}, update {totals['to_update']:,}, delete "
            f"{totals['to_delete']:,}, transfer {totals['bytes_to_transfer']:,} bytes"
        )
        renderer.event(make_event("plan_finished", None, message, plan=data))
        renderer.plan_summary(data)
        renderer.flush()
        if settings.summary_path is not None:
            write_atomically(
                settings.summary_path, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
            )
    return summary
