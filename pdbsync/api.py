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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pdbsync import log
from pdbsync.batch.origin import RunPlace
from pdbsync.batch.slurm import DEFAULT_MARGIN_S
from pdbsync.config import load as config_module
from pdbsync.config.load import Config
from pdbsync.config.options import cli_layer
from pdbsync.errors import UsageError
from pdbsync.events import utc_now
from pdbsync.numbers import MAX_PARALLEL
from pdbsync.preflight import Preflight, resolve_auto
from pdbsync.report.summary import Summary
from pdbsync.rsync.program import check_rsync
from pdbsync.run import driver, locks
from pdbsync.run.collector import CancelFlag, EventSink
from pdbsync.run.deadline import Deadline
from pdbsync.run.driver import RunSettings
from pdbsync.run.jobs import Job, plan_jobs, select_targets
from pdbsync.run.plan_mode import PlanSummary

ConfigLike = Config | str | os.PathLike[str] | None
#: Target names: a sequence of names, one name as a str, or None for every target.
TargetsLike = str | Sequence[str] | None


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
    targets: TargetsLike = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    pdb_dir: str | os.PathLike[str] | None = None,
    plan: bool = False,
    environ: Mapping[str, str] | None = None,
    outputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
) -> list[Job]:
    """The fully resolved jobs (one rsync each, exact argv included) that :func:`sync`
    would run: what ``pdb-sync sync --dry-run`` prints.

    ``targets``: names, in the order to run them (a str is one name); None means every
    target of the config.
    ``overrides``: option values above every config layer, as on the command line
    (``{"delete": True, "retry": 2, "exclude": ["*.tmp"]}``; keys of the option table in
    docs/configuration.md). ``pdb_dir``: the mirror root, else the config's or
    ``PDB_SYNC_DIR``. Checks rsync is installed and new enough. ``outputs``: files the
    caller will write during the run (name → path, e.g. ``{"summary": path}``), refused
    by the same rules as the jobs' own paths (pdbsync.config.write_rules, docs/safety.md).
    """
    environ = os.environ if environ is None else environ
    loaded = load_config(config, environ=environ)
    names = _select(loaded, _target_names(targets))
    return _resolve_jobs(loaded, names, overrides, pdb_dir, plan, environ, outputs=outputs)


def _resolve_jobs(
    loaded: Config,
    names: list[str],
    overrides: Mapping[str, Any] | None,
    pdb_dir: str | os.PathLike[str] | None,
    plan: bool,
    environ: Mapping[str, str],
    rsync_path: str | None = None,
    outputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
) -> list[Job]:
    """:func:`prepare` on a loaded config and selected names; ``rsync_path`` is the rsync
    a preflight already checked (None: check it here); ``outputs`` as for :func:`prepare`."""
    loaded, _choice = resolve_auto(loaded, names, environ)  # probes only for mirror = "auto"
    root = _refuse_outputs(loaded, pdb_dir, outputs, environ)
    if rsync_path is None:
        rsync_path, _version = check_rsync()
    layer = cli_layer(dict(overrides or {}), Path.cwd())
    return plan_jobs(loaded, names, root, rsync=rsync_path, cli_options=layer, plan=plan)


def _refuse_outputs(
    loaded: Config,
    pdb_dir: str | os.PathLike[str] | None,
    outputs: Mapping[str, str | os.PathLike[str] | None] | None,
    environ: Mapping[str, str],
) -> Path:
    """The run's mirror root, once the files the caller writes (``outputs``) have passed
    the write rules (pdbsync.config.write_rules.refuse_outputs; None paths are skipped)."""
    root = config_module.resolve_pdb_dir(
        loaded, None if pdb_dir is None else os.fspath(pdb_dir), environ
    )
    if outputs:
        from pdbsync.config import write_rules
        from pdbsync.store import history as state

        write_rules.refuse_outputs(loaded, root, outputs, state.state_dir(environ))
    return root


def _checked_jobs(
    config: ConfigLike,
    targets: TargetsLike,
    options: RunOptions,
    plan: bool,
    environ: Mapping[str, str],
    on_event: EventSink | None,
    files: Mapping[str, str | os.PathLike[str] | None],
) -> tuple[Config, list[Job]]:
    """What a sync and a plan both do before they run: read the config once, select the
    targets, run the preflight (:func:`_preflight`) and resolve the jobs, the run's
    ``files`` (:func:`_run_outputs`) checked together by the write rules like the jobs'
    own paths."""
    loaded = load_config(config, environ=environ)
    names = _select(loaded, _target_names(targets))
    checked = _preflight(loaded, names, environ, options.allow_vulnerable_rsync, on_event)
    if not names:  # nothing to plan; the files are still written
        _refuse_outputs(loaded, options.pdb_dir, files, environ)
        return loaded, []
    jobs = _resolve_jobs(
        checked.config,
        names,
        options.overrides,
        options.pdb_dir,
        plan,
        environ,
        checked.rsync.path,
        files,
    )
    return loaded, jobs


def _run_outputs(
    summary: str | os.PathLike[str] | None,
    outputs: Mapping[str, str | os.PathLike[str] | None] | None,
) -> dict[str, str | os.PathLike[str] | None]:
    """The files a run writes, label → path: the caller's ``outputs`` and ``summary``.
    An entry of ``outputs`` whose path is ``summary`` itself is the summary under the
    caller's name for it (the command line's ``--summary``), not a second file."""
    files = dict(outputs or {})
    if summary is not None and not any(
        path is not None and os.fspath(path) == os.fspath(summary) for path in files.values()
    ):
        files["summary"] = summary
    return files


def _target_names(targets: TargetsLike) -> list[str] | None:
    """``targets`` as a list (None: every target). A str is one target's name: iterating
    it would run its characters as targets."""
    if targets is None:
        return None
    if isinstance(targets, str):
        return [targets]
    return list(targets)


def _select(loaded: Config, names: list[str] | None) -> list[str]:
    """The targets to run: every one for None, none for an empty list, else ``names``
    (unknown ones are a UsageError)."""
    if names is not None and not names:
        return []
    return select_targets(loaded, names or [], all_targets=names is None)


def _preflight(
    loaded: Config,
    names: list[str],
    environ: Mapping[str, str],
    allow_vulnerable_rsync: bool,
    on_event: EventSink | None,
) -> Preflight:
    """What every sync and plan checks before it starts, from the command line or from
    Python alike (pdbsync.preflight): rsync found, new enough and not vulnerable (refused
    under ``[sync] require_safe_rsync`` unless ``allow_vulnerable_rsync``), ``auto``
    mirrors resolved. The warnings go to ``on_event`` as ``warning`` events before the
    run starts; notes for people (which mirror ``auto`` chose) to ``on_event.note`` when
    the sink has one."""
    from pdbsync import preflight

    checked = preflight.prepare(loaded, names, environ, allow_vulnerable_rsync)
    if on_event is not None:
        for event in checked.warnings:
            on_event(event)
        note = getattr(on_event, "note", None)
        for text in checked.notes if note is not None else ():
            note(text)
        flush = getattr(on_event, "flush", None)
        if flush is not None and checked.warnings:
            flush()
    return checked


def _record(summary: Summary | PlanSummary, kind: str, environ: Mapping[str, str]) -> None:
    """Record the run in the history (pdbsync.store.history), so ``status``, ``--max-age`` and
    ``history`` see runs started from Python as they see the command line's. A history
    that cannot be written never fails the run: ``summary.history_error`` says why."""
    from pdbsync.store import history as state

    try:
        state.record_run(summary.to_dict(), kind, state.state_dir(environ))
    except state.StateError as exc:
        summary.history_error = exc.message


@dataclass(frozen=True)
class RunOptions:
    """How to run a sync or a plan: every setting besides the config, the targets, where
    events go and the cancel, in one value that can be kept, compared and reused
    (``dataclasses.replace(options, parallel=8)``). Checked when made: a value out of
    range is a :class:`~pdbsync.errors.UsageError` naming the field, before anything
    runs or is created. The fields are those of :func:`sync`; ``lock_timeout`` applies
    to a sync only (a plan takes no lock)."""

    #: rsyncs at once, 1 to :data:`~pdbsync.numbers.MAX_PARALLEL`
    parallel: int = 1
    #: option values above every config layer, as on the command line
    overrides: Mapping[str, Any] | None = None
    #: also write the summary JSON there
    summary: str | os.PathLike[str] | None = None
    #: None, ``"wait"`` or ``"kill"``: after the first failure start no new target
    fail_fast: str | None = None
    #: the mirror root for this run (else the config's or ``PDB_SYNC_DIR``)
    pdb_dir: str | os.PathLike[str] | None = None
    #: ``N`` (1 to MAX_PARALLEL) or ``"auto"`` parts for every target; None: each target's
    split: int | str | None = None
    #: rsyncs per mirror host at once; None: ``[sync] max_per_host``, else 4
    max_per_host: int | None = None
    #: seconds to wait for another run's lock on a dest before skipping it; None: wait
    lock_timeout: float | None = None
    #: finish before this time (``"+2h"``, ``"18:30"``, Unix seconds, ``"auto"``)
    deadline: str | None = None
    #: stop transfers this many seconds before the deadline
    deadline_margin: float = DEFAULT_MARGIN_S
    #: ``"I/N"``: only this share of the jobs (``"auto"``: the Slurm array task's)
    shard: str | None = None
    #: run an rsync older than 3.4.0 even under ``[sync] require_safe_rsync = true``
    allow_vulnerable_rsync: bool = False
    #: weekly targets (``update_mode = "weekly"``) run a full sync this time
    full: bool = False

    def __post_init__(self) -> None:
        _check_parallel(self.parallel)
        if self.fail_fast not in (None, "wait", "kill"):
            raise UsageError(f"fail_fast must be None, 'wait' or 'kill', got {self.fail_fast!r}")
        _check_split(self.split, self.max_per_host)
        timeout = self.lock_timeout
        if timeout is not None and not (
            isinstance(timeout, int | float)
            and not isinstance(timeout, bool)
            and 0 <= timeout < float("inf")
        ):
            raise UsageError(
                f"lock_timeout must be a number of seconds, 0 or more, got {timeout!r}"
            )


@dataclass(frozen=True)
class RunHooks:
    """The command line's hooks into a run, kept out of :class:`RunOptions` and the
    documented API (docs/api.md): they serve the CLI's own files and process model.

    ``outputs``: the other files the caller writes for the run (label → path, e.g.
    ``{"--events": path}``; None paths are skipped), refused with the summary by the
    rules of docs/safety.md before anything runs. ``before_run``: called once every check
    has passed (the write rules, the preflight, the lock paths) and before anything runs
    or is written; the place to open such files, so a refused run leaves none behind.
    ``start_method``: None (fork) or ``"forkserver"`` (pdbsync.run.supervisor)."""

    outputs: Mapping[str, str | os.PathLike[str] | None] | None = None
    before_run: Callable[[], None] | None = None
    start_method: str | None = None

    def ready(self) -> None:
        """Every check has passed: let the caller open its files."""
        if self.before_run is not None:
            self.before_run()


def sync_targets(
    config: ConfigLike,
    targets: TargetsLike,
    options: RunOptions,
    *,
    on_event: EventSink | None = None,
    cancel: CancelFlag | None = None,
    environ: Mapping[str, str] | None = None,
    hooks: RunHooks | None = None,
) -> Summary:
    """The one sync: :func:`sync`, :meth:`pdbsync.Mirror.sync` and ``pdb-sync sync`` all
    run through here, so each gets every check and record (see :func:`sync`)."""
    environ = os.environ if environ is None else environ
    hooks = hooks or RunHooks()
    files = _run_outputs(options.summary, hooks.outputs)
    _check_output_paths(files)  # before a run that could take hours
    loaded, planned = _checked_jobs(config, targets, options, False, environ, on_event, files)
    to_run = _announce_dry_runs(planned, on_event)
    to_run = weekly_updates(loaded, to_run, options.full, environ)
    if planned and not to_run:  # a dry run: nothing ran, nothing is written
        hooks.ready()
        return _dry_run_summary(options.parallel)
    to_run, place, rule = batch_setup(
        to_run, environ, options.shard, options.deadline, options.deadline_margin
    )
    if options.lock_timeout is not None:
        to_run = [replace(job, lock_timeout=float(options.lock_timeout)) for job in to_run]
    to_run, warnings = locks.preflight(to_run)  # exit 2 before anything is written
    for warning in warnings:  # without on_event, the log says it (and each result)
        if on_event is not None:
            on_event(warning)
        else:
            log.warning("{}", warning["message"])
    hooks.ready()
    to_run, held, cap = split_jobs(
        loaded, to_run, options.split, options.parallel, options.max_per_host, environ, cancel
    )
    settings = _settings(options, hooks, rule, place, cap)
    try:
        summary = driver.run_sync(to_run, settings, on_event, cancel)
    finally:
        for lock in held:
            lock.release()
    _record(summary, "sync", environ)
    _record_updates(summary, to_run, environ)
    return summary


def plan_targets(
    config: ConfigLike,
    targets: TargetsLike,
    options: RunOptions,
    *,
    on_event: EventSink | None = None,
    cancel: CancelFlag | None = None,
    environ: Mapping[str, str] | None = None,
    hooks: RunHooks | None = None,
) -> PlanSummary:
    """The one plan: :func:`plan`, :meth:`pdbsync.Mirror.plan` and ``pdb-sync sync
    --plan`` all run through here (see :func:`plan`)."""
    environ = os.environ if environ is None else environ
    hooks = hooks or RunHooks()
    files = _run_outputs(options.summary, hooks.outputs)
    _check_output_paths(files)
    loaded, planned = _checked_jobs(config, targets, options, True, environ, on_event, files)
    planned = weekly_updates(loaded, planned, options.full, environ)
    planned, place, rule = batch_setup(
        planned, environ, options.shard, options.deadline, options.deadline_margin
    )
    hooks.ready()
    planned, _held, cap = split_jobs(
        loaded, planned, options.split, options.parallel, options.max_per_host, environ, cancel
    )
    result = driver.run_plan(planned, _settings(options, hooks, rule, place, cap), on_event, cancel)
    _record(result, "plan", environ)
    return result


def sync(
    config: ConfigLike = None,
    targets: TargetsLike = None,
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
    allow_vulnerable_rsync: bool = False,
    full: bool = False,
    outputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    before_run: Callable[[], None] | None = None,
) -> Summary:
    """Sync ``targets`` (None: all; an empty list: none; a str: that one target) of
    ``config``, up to ``parallel`` rsyncs at once: ``pdbsync.Mirror(config).sync(...)``
    in one call, kept for the scripts written before :class:`pdbsync.Mirror`. The
    keyword arguments are :class:`RunOptions`' fields, plus ``environ`` and the
    command line's hooks (``start_method``, ``outputs``, ``before_run``: see
    :class:`RunHooks`).

    The checks and records of ``pdb-sync sync`` apply: rsync must be found and new
    enough; an rsync older than 3.4.0 (CVE-2024-12084..12088) is a ``warning`` event,
    or an EnvironmentProblem under ``[sync] require_safe_rsync = true`` unless
    ``allow_vulnerable_rsync``; the run is recorded in the history that ``pdb-sync
    status`` and ``history`` read (``summary.history_error`` says why it could not be).

    Returns the :class:`Summary` (``.results``, ``summary["name"]``, ``.ok``,
    ``.raise_for_failures()``, ``.counts``, ``.exit_code``, ``.to_dict()`` as written to
    ``summary``). ``on_event`` gets every event (the shapes of
    schemas/event.schema.json). A set ``cancel`` stops the run cleanly: running rsyncs
    are stopped, unfinished targets are ``cancelled``, ``interrupted`` is ``"cancel"``
    (or ``cancel.reason`` if it has one).

    A target whose options say ``dry_run`` is not run: its exact command goes out as a
    ``dry_run`` event and it is left out of the summary; the others run.

    Every dest lock the run will take is checked before anything runs
    (:func:`pdbsync.run.locks.preflight`): anything but a regular file at a lock path raises
    :class:`~pdbsync.run.locks.LockRefused` (exit 2, nothing written); targets on a file
    system that cannot lock run unlocked, and one ``warning`` event (``code``
    ``unlocked``) goes to ``on_event`` first (without ``on_event``: to the log, which is
    loguru's stderr handler unless the caller set up its own); each such target's result
    says why in ``unlocked``.
    """
    options = RunOptions(
        parallel=parallel,
        overrides=overrides,
        summary=summary,
        fail_fast=fail_fast,
        pdb_dir=pdb_dir,
        split=split,
        max_per_host=max_per_host,
        lock_timeout=lock_timeout,
        deadline=deadline,
        deadline_margin=deadline_margin,
        shard=shard,
        allow_vulnerable_rsync=allow_vulnerable_rsync,
        full=full,
    )
    hooks = RunHooks(outputs=outputs, before_run=before_run, start_method=start_method)
    return sync_targets(
        config, targets, options, on_event=on_event, cancel=cancel, environ=environ, hooks=hooks
    )


def plan(
    config: ConfigLike = None,
    targets: TargetsLike = None,
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
    deadline: str | None = None,
    deadline_margin: float = DEFAULT_MARGIN_S,
    shard: str | None = None,
    allow_vulnerable_rsync: bool = False,
    full: bool = False,
    outputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    before_run: Callable[[], None] | None = None,
) -> PlanSummary:
    """What :func:`sync` would do, changing nothing: per target the files to create,
    update and delete and the bytes to transfer (``rsync --dry-run --itemize-changes``).
    ``pdbsync.Mirror(config).plan(...)`` in one call; same arguments, checks and history
    record as :func:`sync`; returns the :class:`PlanSummary`. ``shard`` plans only this
    shard's jobs; ``deadline`` skips, with the reason, the targets the sync would not
    start for it (each judged as if it started now)."""
    options = RunOptions(
        parallel=parallel,
        overrides=overrides,
        summary=summary,
        fail_fast=fail_fast,
        pdb_dir=pdb_dir,
        split=split,
        max_per_host=max_per_host,
        deadline=deadline,
        deadline_margin=deadline_margin,
        shard=shard,
        allow_vulnerable_rsync=allow_vulnerable_rsync,
        full=full,
    )
    hooks = RunHooks(outputs=outputs, before_run=before_run, start_method=start_method)
    return plan_targets(
        config, targets, options, on_event=on_event, cancel=cancel, environ=environ, hooks=hooks
    )


def _check_parallel(parallel: object) -> None:
    """UsageError unless ``parallel`` is a whole number from 1 to MAX_PARALLEL (the
    command line's ``--parallel`` takes the same range)."""
    if (
        isinstance(parallel, bool)
        or not isinstance(parallel, int)
        or not (1 <= parallel <= MAX_PARALLEL)
    ):
        raise UsageError(
            f"parallel must be a whole number from 1 to {MAX_PARALLEL}, got {parallel!r}"
        )


def _check_output_paths(files: Mapping[str, str | os.PathLike[str] | None]) -> None:
    """Refuse, before the config is read or anything runs, a file of the run that could
    never be written (a directory, a missing parent, no permission), named by its label
    (``--summary`` from the command line, ``summary`` from Python)."""
    from pdbsync.outputs import check_output_path

    for label, path in files.items():
        if path is not None:
            check_output_path(Path(path), label)


def _dry_run_summary(parallel: int) -> Summary:
    """The result of a run whose every target was a dry run: nothing ran."""
    now = utc_now()
    return Summary(
        results=[], parallel=parallel, started_at=now, finished_at=now, duration_s=0.0, dry_run=True
    )


def _check_split(split: int | str | None, max_per_host: int | None) -> None:
    """UsageError for a ``split`` or ``max_per_host`` argument out of range: checked
    first, so a bad argument leaves nothing behind (no lock file, no dest parent)."""
    from pdbsync.rsync.hosts import MAX_PER_HOST_LIMIT

    if split is not None and not (
        split == "auto"
        or (isinstance(split, int) and not isinstance(split, bool) and 1 <= split <= MAX_PARALLEL)
    ):
        raise UsageError(
            f"split must be 'auto' or a whole number from 1 to {MAX_PARALLEL}, got {split!r}"
        )
    if max_per_host is not None and not (
        isinstance(max_per_host, int)
        and not isinstance(max_per_host, bool)
        and 1 <= max_per_host <= MAX_PER_HOST_LIMIT
    ):
        raise UsageError(
            f"max_per_host must be a whole number from 1 to {MAX_PER_HOST_LIMIT}, "
            f"got {max_per_host!r}"
        )


def split_jobs(
    config: ConfigLike,
    jobs: list[Job],
    split: int | str | None,
    parallel: int,
    max_per_host: int | None,
    environ: Mapping[str, str],
    cancel: CancelFlag | None,
) -> tuple[list[Job], list[Any], int]:
    """``jobs`` with split targets replaced by their parts (pdbsync.split.parts), the dest
    locks the parent holds for them, and the per-host cap of the run.

    ``split``: ``N`` or ``"auto"`` for every target (None: each target's ``split``);
    ``max_per_host``: None means ``[sync] max_per_host``, else 4.
    """
    from pdbsync.rsync.hosts import DEFAULT_MAX_PER_HOST
    from pdbsync.split import parts as splitting
    from pdbsync.store import history as state

    _check_split(split, max_per_host)
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

    The history (pdbsync.store.history) is read only when a shard or a deadline needs it.
    """
    from pdbsync.batch import shards
    from pdbsync.batch.slurm import SlurmJob, host_name
    from pdbsync.run.deadline import resolve_deadline
    from pdbsync.store import history as state

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


def weekly_updates(
    loaded: Config, jobs: list[Job], full: bool, environ: Mapping[str, str]
) -> list[Job]:
    """``jobs`` with each weekly target's mode for this run (pdbsync.weekly.plan): its
    state read, the mirror's status lists fetched (the same host and module, or
    ``status_url``), full or weekly decided with the reason. A weekly job is never split
    (it is a few small rsyncs already) and does not move to another mirror of an
    ``auto`` choice (its lists came from this one); a full one runs as configured."""
    from datetime import UTC, datetime

    from pdbsync.store import history as state
    from pdbsync.store import updates
    from pdbsync.weekly import fetch
    from pdbsync.weekly import plan as weekly

    chosen = {}
    for job in jobs:
        target = loaded.targets.get(job.name)
        settings = config_module.weekly_settings(replace(target, url=job.url)) if target else None
        if settings is not None:
            chosen[job.name] = settings
    if not chosen:
        return jobs
    directory = state.state_dir(environ)
    try:
        known = updates.read_updates(directory)
    except state.StateError:
        known = {}
    now = datetime.now(UTC)
    lists = fetch.StatusCache(directory / "status-lists")
    out = []
    for job in jobs:
        settings = chosen.get(job.name)
        if settings is None:
            out.append(job)
            continue
        key = updates.update_key(str(job.resolved_dest or job.dest), job.url)
        given = weekly.Inputs(
            layout=settings.layout,
            key=key,
            status_url=settings.status_url,
            full_every_s=settings.full_every_s,
            state=known.get(key),
            full_flag=full,
            delete_with_backup=job.options.delete and job.options.backup,
        )
        update = weekly.decide(given, job.command.program, now, lists.list_weeks, lists.fetch_weeks)
        if update.mode == weekly.FULL:
            out.append(replace(job, update=update))
        else:  # a few small rsyncs, all from the mirror the lists came from
            out.append(replace(job, update=update, split=None, fallbacks=()))
    return out


def _record_updates(summary: Summary, jobs: Sequence[Job], environ: Mapping[str, str]) -> None:
    """After a sync, each weekly target that succeeded: the week it now has applied and
    when (pdbsync.store.updates). A target that failed or was stopped records nothing, so
    its next run retries the same weeks. A state that cannot be written is a warning in
    the summary, like the history's."""
    from pdbsync.store import history as state
    from pdbsync.store import updates

    by_name = {job.name: job for job in jobs if job.update is not None}
    changes: dict[str, dict[str, Any]] = {}
    for result in summary.results:
        job = by_name.get(result.name)
        if job is None or job.update is None or result.status != "success":
            continue
        update = job.update
        fields: dict[str, Any] = {"name": job.name, "dest": str(job.dest), "source": job.url}
        fields["last_full" if update.mode == "full" else "last_weekly"] = result.started_at
        if update.newest is not None:
            fields["last_week"] = update.newest
        changes[update.key] = fields
    try:
        updates.record_updates(state.state_dir(environ), changes)
    except state.StateError as exc:
        summary.history_error = exc.message


def _durations(directory: Path) -> dict[str, float]:
    from pdbsync.store import history as state

    try:
        return state.last_durations(directory)
    except state.StateError:
        return {}


def _settings(
    options: RunOptions,
    hooks: RunHooks,
    deadline: Deadline | None,
    place: RunPlace,
    max_per_host: int,
) -> RunSettings:
    """The run loop's settings (pdbsync.run.driver) for a checked run."""
    return RunSettings(
        parallel=options.parallel,
        summary_path=None if options.summary is None else Path(options.summary),
        fail_fast=options.fail_fast,
        start_method=hooks.start_method,
        deadline=deadline,
        place=place,
        max_per_host=max_per_host,
    )


def _announce_dry_runs(planned: list[Job], on_event: EventSink | None) -> list[Job]:
    """Send a ``dry_run`` event for each job whose options say dry_run; the rest run."""
    from pdbsync.run.jobs import dry_run_event

    dry = [job for job in planned if job.options.dry_run]
    if dry and on_event is not None:
        for job in dry:
            on_event(dry_run_event(job))
        flush = getattr(on_event, "flush", None)
        if flush is not None:
            flush()
    return [job for job in planned if not job.options.dry_run]
