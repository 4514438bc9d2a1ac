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

from pdbsync.config import Config, target_options
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
    dest: Path
    argv: tuple[str, ...]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    description: str = ""
    #: the resolved options argv was built from (with the layer of each value)
    options: RsyncOptions = field(default_factory=RsyncOptions)
    plan: bool = False  # a --dry-run --itemize-changes run: count what would change


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
    """
    jobs = []
    for name in names:
        target = config.targets[name]
        try:
            resolved = target_options(config, name, cli_options)
        except ConfigError as exc:
            problems = [f"{config.path}: {problem}" for problem in exc.problems]
            raise ConfigError(problems[0], problems) from None
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
