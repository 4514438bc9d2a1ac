"""Turning the selected targets into fully resolved jobs.

A :class:`Job` is everything a worker process needs to run one rsync, decided before
the pool starts: nothing in a worker reads the config or the command line. Jobs are
frozen and picklable, so they cross into worker processes unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pdbsync.config import Config
from pdbsync.errors import UsageError
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
    retry: RetryPolicy | None = None,
    plan: bool = False,
) -> list[Job]:
    """One :class:`Job` per selected target, with its complete rsync argv.

    ``plan``: jobs that only find out what the sync would do (see pdbsync.plan).
    """
    jobs = []
    for name in names:
        target = config.targets[name]
        dest = pdb_dir / target.dest
        argv = build_argv(rsync, target.url, str(dest), plan=plan)
        jobs.append(
            Job(
                name=name,
                url=target.url,
                dest=dest,
                argv=tuple(argv),
                retry=retry or RetryPolicy(),
                description=target.description,
                plan=plan,
            )
        )
    return jobs
