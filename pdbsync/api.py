"""pdb-sync as a library: load a config, sync or plan its targets, get typed results.

For pipelines (Snakemake, Airflow, Prefect, notebooks) and for pdb-sync's own command
line, which is a thin layer over these functions. Nothing here installs a signal
handler, calls ``sys.exit``/``os._exit`` or prints: events go to ``on_event`` when
given, cancellation comes from ``cancel`` (a ``threading.Event`` set from any thread),
and failures are :class:`~pdbsync.errors.PdbSyncError` subclasses with one-line
messages. A run may be started from any thread. See docs/api.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pdbsync import config as config_module
from pdbsync.config import Config
from pdbsync.deadline import DEFAULT_MARGIN_S, Deadline
from pdbsync.errors import UsageError
from pdbsync.events import utc_now
from pdbsync.jobs import Job, plan_jobs, select_targets
from pdbsync.options import cli_layer
from pdbsync.place import RunPlace
from pdbsync.plans import PlanSummary
from pdbsync.preflight import resolve_auto
from pdbsync.rsync import check_rsync
from pdbsync.runner import CancelFlag, EventSink
from pdbsync.runs import RunSettings, run_plan, run_sync
from pdbsync.summary import Summary

ConfigLike = Config | str | os.PathLike[str] | None


def load_config(config: ConfigLike = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """The validated config: ``config`` is a path (str or Path), an already loaded
    :class:`Config` (returned as is), or None to find it as the command line does
    (``PDB_SYNC_CONFIG``, then ``$XDG_CONFIG_HOME/pdb-sync/config.toml``, then
    ``~/.config/pdb-sync/config.toml``). Raises ConfigError (one line) if it is bad."""
    if isinstance(config, Config):
        return config
    environ = os.environ if environ is None else environ
    explicit = None if config is None else os.fspath(config)
    path = config_module.find_config(explicit, environ, label="config")
    return config_module.load_config(path)


def prepare(
    config: ConfigLike = None,
    targets: Sequence[str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    pdb_dir: str | os.PathLike[str] | None = None,
    plan: bool = False,
    environ: Mapping[str, str] | None = None,
) -> list[Job]:
    """The fully resolved jobs (one rsync each, exact argv included) that :func:`sync`
    would run: what ``pdb-sync sync --dry-run`` prints.

    ``targets``: names, in the order to run them; None means every target of the config.
    ``overrides``: option values above every config layer, as on the command line
    (``{"delete": True, "retry": 2, "exclude": ["*.tmp"]}``; keys of the option table in
    docs/configuration.md). ``pdb_dir``: the mirror root, else the config's or
    ``PDB_SYNC_DIR``. Checks rsync is installed and new enough.
    """
    environ = os.environ if environ is None else environ
    loaded = load_config(config, environ=environ)
    names = select_targets(loaded, list(targets or ()), all_targets=targets is None)
    loaded, _choice = resolve_auto(loaded, names, environ)  # probes only for mirror = "auto"
    root = config_module.resolve_pdb_dir(
        loaded, None if pdb_dir is None else os.fspath(pdb_dir), environ
    )
    rsync_path, _version = check_rsync()
    layer = cli_layer(dict(overrides or {}), Path.cwd())
    return plan_jobs(loaded, names, root, rsync=rsync_path, cli_options=layer, plan=plan)


def sync(
    config: ConfigLike = None,
    targets: Sequence[str] | None = None,
    *,
    parallel: int = 1,
    overrides: Mapping[str, Any] | None = None,
    on_event: EventSink | None = None,
    cancel: CancelFlag | None = None,
    summary: str | os.PathLike[str] | None = None,
    fail_fast: str | None = None,
    pdb_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    start_method: str | None = None,
    lock_timeout: float | None = None,
    deadline: str | None = None,
    deadline_margin: float = DEFAULT_MARGIN_S,
    shard: str | None = None,
    split: int | str | None = None,
    max_per_host: int | None = None,
) -> Summary:
    """Sync ``targets`` (None: all; an empty list: none) of ``config``, up to
    ``parallel`` rsyncs at once.

    Returns the :class:`Summary` (``.results``, ``.counts``, ``.exit_code``,
    ``.to_dict()`` as written to ``summary``). ``on_event`` gets every event (the shapes
    of schemas/event.schema.json). A set ``cancel`` stops the run cleanly: running rsyncs
    are stopped, unfinished targets are ``cancelled``, ``interrupted`` is ``"cancel"``
    (or ``cancel.reason`` if it has one).

    A target whose options say ``dry_run`` is not run: its exact command goes out as a
    ``dry_run`` event and it is left out of the summary; the others run.
    ``fail_fast``: ``"wait"`` or ``"kill"`` (see docs/unattended.md). ``start_method``:
    None (fork; see :func:`pdbsync.supervisor.start_method`) or ``"forkserver"`` for a
    host process with threads of its own.

    For batch jobs (docs/unattended.md): ``lock_timeout``: seconds to wait for another
    run's lock on a target's dest before skipping it (None: wait). ``deadline``: finish
    before this time (``"+2h"``, ``"18:30"``, Unix seconds, ``"auto"``: the Slurm job's
    end inside a job; None: no deadline); transfers stop ``deadline_margin`` seconds
    before it. ``shard``: ``"I/N"`` runs only this share of the jobs (``"auto"``: the
    Slurm array task's share; None: all).
    """
    environ = os.environ if environ is None else environ
    settings = _settings(parallel, summary, fail_fast, start_method)
    if lock_timeout is not None and not (
        isinstance(lock_timeout, int | float) and 0 <= lock_timeout < float("inf")
    ):
        raise UsageError(
            f"lock_timeout must be a number of seconds, 0 or more, got {lock_timeout!r}"
        )
    planned = (
        []
        if targets is not None and not list(targets)
        else prepare(config, targets, overrides=overrides, pdb_dir=pdb_dir, environ=environ)
    )
    to_run = _announce_dry_runs(planned, on_event)
    if planned and not to_run:  # a dry run: nothing ran, nothing is written
        now = utc_now()
        return Summary(
            results=[],
            parallel=parallel,
            started_at=now,
            finished_at=now,
            duration_s=0.0,
            dry_run=True,
        )
    to_run, place, rule = batch_setup(to_run, environ, shard, deadline, deadline_margin)
    if lock_timeout is not None:
        to_run = [replace(job, lock_timeout=float(lock_timeout)) for job in to_run]
    to_run, held, cap = split_jobs(config, to_run, split, parallel, max_per_host, environ, cancel)
    settings = replace(settings, deadline=rule, place=place, max_per_host=cap)
    try:
        return run_sync(to_run, settings, on_event, cancel)
    finally:
        for lock in held:
            lock.release()


def plan(
    config: ConfigLike = None,
    targets: Sequence[str] | None = None,
    *,
    parallel: int = 1,
    overrides: Mapping[str, Any] | None = None,
    on_event: EventSink | None = None,
    cancel: CancelFlag | None = None,
    summary: str | os.PathLike[str] | None = None,
    fail_fast: str | None = None,
    pdb_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    start_method: str | None = None,
    split: int | str | None = None,
    max_per_host: int | None = None,
) -> PlanSummary:
    """What :func:`sync` would do, changing nothing: per target the files to create,
    update and delete and the bytes to transfer (``rsync --dry-run --itemize-changes``).
    Same arguments as :func:`sync`; returns the :class:`PlanSummary`."""
    settings = _settings(parallel, summary, fail_fast, start_method)
    planned = prepare(
        config, targets, overrides=overrides, pdb_dir=pdb_dir, plan=True, environ=environ
    )
    environ = os.environ if environ is None else environ
    planned, _held, cap = split_jobs(
        config, planned, split, parallel, max_per_host, environ, cancel
    )
    return run_plan(planned, replace(settings, max_per_host=cap), on_event, cancel)


def split_jobs(
    config: ConfigLike,
    jobs: list[Job],
    split: int | str | None,
    parallel: int,
    max_per_host: int | None,
    environ: Mapping[str, str],
    cancel: CancelFlag | None,
) -> tuple[list[Job], list[Any], int]:
    """``jobs`` with split targets replaced by their parts (pdbsync.split), the dest
    locks the parent holds for them, and the per-host cap of the run.

    ``split``: ``N`` or ``"auto"`` for every target (None: each target's ``split``);
    ``max_per_host``: None means ``[sync] max_per_host``, else 4.
    """
    from pdbsync import split as splitting
    from pdbsync import state
    from pdbsync.hosts import DEFAULT_MAX_PER_HOST, MAX_PER_HOST_LIMIT

    if split is not None and not (
        split == "auto"
        or (isinstance(split, int) and not isinstance(split, bool) and 1 <= split <= 100)
    ):
        raise UsageError(f"split must be 'auto' or a whole number from 1 to 100, got {split!r}")
    if max_per_host is not None and not (
        isinstance(max_per_host, int)
        and not isinstance(max_per_host, bool)
        and 1 <= max_per_host <= MAX_PER_HOST_LIMIT
    ):
        raise UsageError(
            f"max_per_host must be a whole number from 1 to {MAX_PER_HOST_LIMIT}, "
            f"got {max_per_host!r}"
        )
    if max_per_host is None:
        loaded = load_config(config, environ=environ)
        max_per_host = int(loaded.sync_table.get("max_per_host", DEFAULT_MAX_PER_HOST))
    jobs, held = splitting.expand(
        jobs,
        split=split,
        parallel=parallel,
        max_per_host=max_per_host,
        directory=state.state_dir(environ),
        cancel=cancel,
    )
    return jobs, held, max_per_host


def batch_setup(
    jobs: list[Job],
    environ: Mapping[str, str],
    shard: str | None,
    deadline: str | None,
    margin: float = DEFAULT_MARGIN_S,
) -> tuple[list[Job], RunPlace, Deadline | None]:
    """This run's share of ``jobs`` (``shard``), where it runs, and its deadline rule.

    The history (pdbsync.state) is read only when a shard or a deadline needs it.
    """
    from pdbsync import shards, state
    from pdbsync.deadline import resolve_deadline
    from pdbsync.slurm import SlurmJob, host_name

    slurm = SlurmJob.from_environ(environ)
    chosen = shards.resolve_shard(shard, slurm) if shard is not None else None
    everything = tuple(job.name for job in jobs)
    directory = state.state_dir(environ)
    if chosen is not None:
        jobs = shards.select(jobs, chosen, shards.expected_sizes(directory))
    rule = None
    if deadline is not None:
        given = None if deadline.strip().lower() == "auto" else deadline
        if given is not None or slurm is not None:
            rule = resolve_deadline(given, environ, _durations(directory), margin)
    place = RunPlace(
        host=host_name(),
        shard=chosen,
        slurm=slurm,
        all_targets=everything if chosen is not None else None,
    )
    return jobs, place, rule


def _durations(directory: Path) -> dict[str, float]:
    from pdbsync import state

    try:
        return state.last_durations(directory)
    except state.StateError:
        return {}


def _settings(
    parallel: int,
    summary: str | os.PathLike[str] | None,
    fail_fast: str | None,
    start_method: str | None,
) -> RunSettings:
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise UsageError(f"parallel must be a whole number of 1 or more, got {parallel!r}")
    if fail_fast not in (None, "wait", "kill"):
        raise UsageError(f"fail_fast must be None, 'wait' or 'kill', got {fail_fast!r}")
    path = None if summary is None else Path(summary)
    if path is not None:
        from pdbsync.outputs import check_output_path

        check_output_path(path, "summary")
    return RunSettings(
        parallel=parallel, summary_path=path, fail_fast=fail_fast, start_method=start_method
    )


def _announce_dry_runs(planned: list[Job], on_event: EventSink | None) -> list[Job]:
    """Send a ``dry_run`` event for each job whose options say dry_run; the rest run."""
    from pdbsync.jobs import dry_run_event

    dry = [job for job in planned if job.options.dry_run]
    if dry and on_event is not None:
        for job in dry:
            on_event(dry_run_event(job))
        flush = getattr(on_event, "flush", None)
        if flush is not None:
            flush()
    return [job for job in planned if not job.options.dry_run]
