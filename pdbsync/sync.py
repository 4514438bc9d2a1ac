"""One sync run from resolved jobs to a written summary; knows nothing of argparse."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pdbsync import __version__
from pdbsync.errors import ExitCode
from pdbsync.events import make_event, utc_now
from pdbsync.jobs import Job
from pdbsync.plan import PlanSummary
from pdbsync.render import Renderer
from pdbsync.runner import Collector, Interrupts, catching_signals
from pdbsync.summary import (
    Summary,
    SummaryWriteError,
    summary_json,
    validate_summary,
    write_atomically,
)


@dataclass(frozen=True)
class RunSettings:
    """How to run the jobs (from the command line and config, resolved)."""

    parallel: int = 1
    summary_path: Path | None = None
    fail_fast: str | None = None


class _RunSummary(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


_SummaryT = TypeVar("_SummaryT", bound=_RunSummary)


def run_sync(jobs: list[Job], settings: RunSettings, renderer: Renderer) -> Summary:
    """Run ``jobs`` on the pool, render every event, and write the validated summary.

    SIGINT and SIGTERM are caught for the duration: unfinished targets end up
    ``cancelled`` and the summary is still rendered and written.
    """

    def finish(data: dict[str, Any]) -> None:
        renderer.event(make_event("run_finished", None, _finished_message(data), summary=data))
        renderer.summary(data)

    return _run(
        jobs,
        settings,
        renderer,
        started_message=f"Syncing {_targets(jobs)} (parallel {_parallel(jobs, settings)})...",
        emit=renderer.event,
        build=Summary,
        schema="summary",
        finish=finish,
    )


def run_plan(jobs: list[Job], settings: RunSettings, renderer: Renderer) -> PlanSummary:
    """Run plan ``jobs`` (``Job.plan``) on the pool like a sync; render and write the plan.

    Same pool, collector, retries and signal handling as :func:`run_sync`; the worker
    sends each target's ``plan`` event before its result, and the plan summary (checked
    against ``schemas/plan.schema.json``) replaces the sync summary.
    """
    plans: dict[str, dict[str, Any]] = {}

    def emit(event: dict[str, Any]) -> None:
        if event["type"] == "plan":
            plans[event["name"]] = event
        renderer.event(event)

    def finish(data: dict[str, Any]) -> None:
        totals = data["totals"]
        message = (
            f"Plan finished: {totals['planned']}/{totals['targets']} planned; would create "
            f"{totals['to_create']:,}, update {totals['to_update']:,}, delete "
            f"{totals['to_delete']:,}, transfer {totals['bytes_to_transfer']:,} bytes"
        )
        renderer.event(make_event("plan_finished", None, message, plan=data))
        renderer.plan_summary(data)

    return _run(
        jobs,
        settings,
        renderer,
        started_message=(
            f"Planning {_targets(jobs)} (dry run, parallel {_parallel(jobs, settings)})..."
        ),
        emit=emit,
        build=lambda **run: PlanSummary(plans=plans, **run),
        schema="plan",
        finish=finish,
    )


def _run(
    jobs: list[Job],
    settings: RunSettings,
    renderer: Renderer,
    *,
    started_message: str,
    emit: Callable[[dict[str, Any]], None],
    build: Callable[..., _SummaryT],
    schema: str,
    finish: Callable[[dict[str, Any]], None],
) -> _SummaryT:
    """What a sync and a plan share: announce, run the pool under signal handling, then
    build the summary with ``build``, validate it against ``schema``, write it to
    ``--summary``, and let ``finish`` render it.

    The summary is validated before anything shows it, so a schema bug never reaches a
    reader. The file is written before the final event, so the ``exit_code`` that event
    carries is always the process's: a failed write turns a 0 into 1 (a failed run or a
    signal's code stays), and the SummaryWriteError raised after rendering carries it.
    """
    started_at = utc_now()
    started = time.monotonic()
    renderer.event(
        make_event(
            "run_started",
            None,
            started_message,
            targets=[job.name for job in jobs],
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
            emit=emit,
            flush=renderer.flush,
            interrupts=interrupts,
            fail_fast=settings.fail_fast,
        )
        results = collector.run()
        summary = build(
            results=results,
            parallel=settings.parallel,
            started_at=started_at,
            finished_at=utc_now(),
            duration_s=time.monotonic() - started,
            interrupted=interrupts.first,
        )
        data = summary.to_dict()
        validate_summary(data, schema)
        failure = _write_summary(settings.summary_path, data)
        finish(data)
        renderer.flush()
    if failure is not None:
        raise failure
    return summary


def _write_summary(path: Path | None, data: dict[str, Any]) -> SummaryWriteError | None:
    """Write ``data`` to ``path``; on failure, make ``data`` and the error say the exit
    status the process will have, and return the error for raising after rendering."""
    if path is None:
        return None
    try:
        write_atomically(path, summary_json(data))
    except SummaryWriteError as exc:
        if data["exit_code"] == ExitCode.OK:
            data["exit_code"] = int(ExitCode.SYNC_FAILED)
        exc.exit_code = ExitCode(data["exit_code"])
        return exc
    return None


def _targets(jobs: list[Job]) -> str:
    return f"{len(jobs)} target{'s' if len(jobs) != 1 else ''}"


def _parallel(jobs: list[Job], settings: RunSettings) -> int:
    return min(settings.parallel, len(jobs))


def _finished_message(data: dict) -> str:
    totals = data["totals"]
    return (
        f"Finished: {totals['succeeded']}/{totals['total']} succeeded, "
        f"{totals['failed']} failed, {totals['cancelled']} cancelled, "
        f"{totals['skipped']} skipped in {data['timings']['total_s']:.2f}s"
    )
