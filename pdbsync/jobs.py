"""Turning the selected targets into fully resolved jobs.

A :class:`Job` is everything a worker process needs to run one rsync, decided before
the pool starts: nothing in a worker reads the config or the command line. Jobs are
frozen and picklable, so they cross into worker processes unchanged.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdbsync import paths
from pdbsync.config import Config, option_path_problems, resolve_dests, target_options
from pdbsync.errors import ConfigError, UsageError
from pdbsync.events import make_event
from pdbsync.options import Layer, RsyncOptions, build_flags
from pdbsync.rsync import build_argv


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a job retries transient rsync failures."""

    retries: int = 0
    delay: float | None = None  # fixed delay in seconds; None means exponential backoff


@dataclass(frozen=True)
class Job:
    """One rsync transfer for one target, fully resolved."""

    name: str
    url: str
    dest: Path  # as rsync is given it: pdb_dir / dest
    argv: tuple[str, ...]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    description: str = ""
    #: the resolved options argv was built from (with the layer of each value)
    options: RsyncOptions = field(default_factory=RsyncOptions)
    plan: bool = False  # a --dry-run --itemize-changes run: count what would change
    #: pdb_dir with every symlink followed, when the job was planned
    root: Path | None = None
    #: where ``dest`` resolved when the job was planned (strictly below ``root``); the
    #: worker refuses to start rsync if it resolves anywhere else by then (None: unchecked)
    resolved_dest: Path | None = None

    def dest_moved(self) -> str | None:
        """Why rsync must not start now, if ``dest`` no longer resolves where it did.

        Checked by the worker just before each attempt (and again after creating the
        dest): a symlink put into the path after planning would otherwise take rsync,
        and its deletes, wherever it points.
        """
        if self.resolved_dest is None:
            return None
        now = paths.moved(self.dest, self.resolved_dest)
        if now is None:
            return None
        return (
            f"destination {str(self.dest)!r} now resolves to {str(now)!r}, not "
            f"{str(self.resolved_dest)!r} as when the run was planned (a symlink changed); "
            "refusing to start rsync there"
        )


def select_targets(config: Config, names: Sequence[str], all_targets: bool) -> list[str]:
    """The target names to run, in config order for ``--all``, else as given."""
    known = list(config.targets)
    if all_targets:
        if not known:
            raise UsageError(f"{config.path}: no targets defined; add a [sync.custom.NAME] table")
        return known
    if not names:
        raise UsageError("name one or more targets, or use --all (see 'pdb-sync sync --list')")
    unknown = [name for name in names if name not in config.targets]
    if unknown:
        listing = ", ".join(known) if known else "(none defined)"
        raise UsageError(
            f"unknown target {unknown[0]!r} (not in {config.path}); known targets: {listing}"
        )
    return list(dict.fromkeys(names))


def plan_jobs(
    config: Config,
    names: Sequence[str],
    pdb_dir: Path,
    rsync: str = "rsync",
    cli_options: Layer | None = None,
    plan: bool = False,
) -> list[Job]:
    """One :class:`Job` per selected target, with its complete rsync argv.

    Options are resolved per target (command line, target options, preset, defaults,
    legacy keys, built-in), ``retry``/``retry_delay`` included: ``--retry`` arrives in
    ``cli_options``. A bad combination raises ConfigError before anything runs.
    ``plan``: jobs that only find out what the sync would do (see pdbsync.plan).

    Every dest of the config (not only the selected ones: syncing ``x`` must not delete
    the tree of a ``y`` linked to it) is judged by where it resolves under ``pdb_dir``
    now, and so are absolute ``backup_dir``/``partial_dir`` values; see pdbsync.paths.
    """
    checked = resolve_dests(pdb_dir, {t.name: t.dest for t in config.targets.values()})
    if checked.problems:
        problems = [f"{config.path}: {problem}" for problem in checked.problems]
        raise ConfigError(problems[0], problems)
    jobs = []
    for name in names:
        target = config.targets[name]
        try:
            resolved = target_options(config, name, cli_options)
        except ConfigError as exc:
            problems = [f"{config.path}: {problem}" for problem in exc.problems]
            raise ConfigError(problems[0], problems) from None
        outside = option_path_problems(checked.root, name, resolved)
        if outside:
            problems = [f"{config.path}: {problem}" for problem in outside]
            raise ConfigError(problems[0], problems)
        dest = pdb_dir / target.dest
        argv = build_argv(rsync, target.url, str(dest), build_flags(resolved), plan=plan)
        jobs.append(
            Job(
                name=name,
                url=target.url,
                dest=dest,
                argv=tuple(argv),
                retry=RetryPolicy(resolved.retry, resolved.retry_delay),
                description=target.description,
                options=resolved,
                plan=plan,
                root=checked.root,
                resolved_dest=Path(checked.dests[name]),
            )
        )
    return jobs


def dry_run_event(job: Job) -> dict[str, Any]:
    """The ``dry_run`` event of a job: its exact argv (and shell form) and its options.

    ``message`` is the command line as a shell would need it (``shlex.join``), so a
    person can copy it; ``options``/``sources`` say what each option is and why.
    """
    return make_event(
        "dry_run",
        job.name,
        shlex.join(job.argv),
        argv=list(job.argv),
        options=job.options.values(),
        sources={key: job.options.source(key) for key in job.options.values()},
    )
