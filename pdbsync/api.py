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
from pathlib import Path
from typing import Any

from pdbsync import config as config_module
from pdbsync.config import Config
from pdbsync.events import utc_now
from pdbsync.jobs import Job, plan_jobs, select_targets
from pdbsync.options import cli_layer
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
    path = config_module.find_config(None if config is None else os.fspath(config), environ)
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
) -> Summary:
    """Sync ``targets`` (None: all) of ``config``, up to ``parallel`` rsyncs at once.

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
    """
    settings = _settings(parallel, summary, fail_fast, start_method)
    planned = prepare(config, targets, overrides=overrides, pdb_dir=pdb_dir, environ=environ)
    to_run = _announce_dry_runs(planned, on_event)
    if not to_run:  # a dry run: nothing ran, nothing is written
        now = utc_now()
        return Summary(
            results=[], parallel=parallel, started_at=now, finished_at=now, duration_s=0.0
        )
    return run_sync(to_run, settings, on_event, cancel)


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
) -> PlanSummary:
    """What :func:`sync` would do, changing nothing: per target the files to create,
    update and delete and the bytes to transfer (``rsync --dry-run --itemize-changes``).
    Same arguments as :func:`sync`; returns the :class:`PlanSummary`."""
    settings = _settings(parallel, summary, fail_fast, start_method)
    planned = prepare(
        config, targets, overrides=overrides, pdb_dir=pdb_dir, plan=True, environ=environ
    )
    return run_plan(planned, settings, on_event, cancel)


def _settings(
    parallel: int,
    summary: str | os.PathLike[str] | None,
    fail_fast: str | None,
    start_method: str | None,
) -> RunSettings:
    from pdbsync.errors import UsageError

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
