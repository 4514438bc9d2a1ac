"""Turning the selected targets into fully resolved jobs.

A :class:`Job` is everything a worker process needs to run one rsync, decided before
the pool starts: nothing in a worker reads the config or the command line. Jobs are
frozen and picklable, so they cross into worker processes unchanged.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pdbsync import paths
from pdbsync.config import write_rules
from pdbsync.config.load import Config, option_path_problems, resolve_dests, target_options
from pdbsync.config.options import Layer, RsyncOptions, filter_flags, option_flags
from pdbsync.errors import ConfigError, UsageError
from pdbsync.events import make_event
from pdbsync.rsync.argv import RsyncArgv
from pdbsync.rsync.exits import is_connection_failure
from pdbsync.weekly.plan import WEEKLY, Update


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
    #: the rsync command line as a value; :attr:`argv` renders it
    command: RsyncArgv
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
    #: the registry id of the mirror ``url`` is on (None: the target gives its own url)
    mirror: str | None = None
    #: why that mirror: "target", "[sync] mirror", "--mirror", "default", "auto: ...", "url"
    mirror_reason: str = "url"
    #: (mirror id, url) to try next, best first, if ``url`` cannot be connected to
    #: (``mirror = "auto"`` only: the other reachable mirrors)
    fallbacks: tuple[tuple[str, str], ...] = ()
    #: ``split`` as configured (``N`` or ``"auto"``; None: one rsync); see pdbsync.split.parts
    split: int | str | None = None
    #: this job's part of a split target, 1-based, and how many parts (0, 0: not split)
    part: int = 0
    parts: int = 0
    #: what the job is expected to weigh (bytes, or a last duration turned into bytes),
    #: for longest-first scheduling; None: unknown
    expected: float | None = None
    #: seconds to wait for another run's lock on ``dest`` before the job is skipped
    #: (None: wait as long as it takes; see pdbsync.run.locks)
    lock_timeout: float | None = None
    #: why this job runs without its dest lock (the file system cannot lock there), as
    #: the run's preflight found and warned once (pdbsync.run.locks.preflight); None: locked
    unlocked: str | None = None
    #: a weekly target's mode for this run, decided before the pool starts
    #: (pdbsync.weekly.plan); a ``weekly`` one transfers only the changed entries' files
    update: Update | None = None

    @property
    def weekly(self) -> bool:
        """This run transfers only the changed entries' files (a weekly target whose
        decision was ``weekly``): a few small rsyncs of their own, never split."""
        return self.update is not None and self.update.mode == WEEKLY

    @property
    def argv(self) -> tuple[str, ...]:
        """The exact argv the worker runs (:meth:`RsyncArgv.render`)."""
        return tuple(self.command.render())

    @property
    def key(self) -> str:
        """The job's own name in the run: the target name, or ``mmcif 2/4`` for a part
        (target names cannot contain spaces, so keys never collide)."""
        return f"{self.name} {self.part}/{self.parts}" if self.parts else self.name

    def next_mirror(self, code: int | None, stderr_lines: Iterable[str]) -> Job | None:
        """This job on its next fallback mirror, if rsync could not connect to this one.

        Only a connection failure moves on (refused, unreachable, no daemon answer): any
        other failure would be the same on every mirror. None: no switch.
        """
        if not self.fallbacks or not is_connection_failure(code, stderr_lines):
            return None
        (mirror, url), rest = self.fallbacks[0], self.fallbacks[1:]
        return replace(
            self,
            url=url,
            command=replace(self.command, source=url),
            mirror=mirror,
            mirror_reason=f"fallback: {self.mirror} could not be connected to",
            fallbacks=rest,
        )

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
        # As in the Rust pdb-sync (and its users' cron lines): a bare `sync` runs them all.
        return select_targets(config, (), True)
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
    ``plan``: jobs that only find out what the sync would do (see pdbsync.run.plan_mode).

    Every dest of the config (not only the selected ones: syncing ``x`` must not delete
    the tree of a ``y`` linked to it) is judged by where it resolves under ``pdb_dir``
    now; each selected target's partial dir, backup dir and lock file by
    :mod:`pdbsync.config.write_rules` against all of them (so split parts and shards, which
    reuse these jobs' paths, are judged too).

    A target resolved by a ``mirror = "auto"`` choice (pdbsync.preflight.resolve_auto)
    gets the other reachable mirrors of that choice, best first, as its fallbacks.
    """
    checked = resolve_dests(pdb_dir, {t.name: t.dest for t in config.targets.values()})
    if checked.problems:
        problems = [f"{config.path}: {problem}" for problem in checked.problems]
        raise ConfigError(problems[0], problems)
    dests = write_rules.Dests(checked.dests, {t.name: t.dest for t in config.targets.values()})
    jobs = []
    run_places: list[write_rules.Place] = []  # the selected targets' dirs, checked together
    for name in names:
        target = config.targets[name]
        try:
            resolved = target_options(config, name, cli_options)
        except ConfigError as exc:
            problems = [f"{config.path}: {problem}" for problem in exc.problems]
            raise ConfigError(problems[0], problems) from None
        outside = option_path_problems(checked.root, name, resolved)
        places = write_rules.target_places(name, checked.dests[name], resolved)
        outside += write_rules.target_problems(places, dests)
        run_places += places
        if outside:
            problems = [f"{config.path}: {problem}" for problem in outside]
            raise ConfigError(problems[0], problems)
        dest = pdb_dir / target.dest
        if not target.url:
            raise UsageError(
                f"target {name!r} uses mirror 'auto', which is chosen by measuring the "
                "mirrors first: call pdbsync.preflight.resolve_auto(config, names, environ)"
            )
        command = RsyncArgv(
            rsync,
            target.url,
            str(dest),
            flags=tuple(option_flags(resolved)),
            filters=tuple(filter_flags(resolved)),
            plan=plan,
        )
        fallbacks: tuple[tuple[str, str], ...] = ()
        if target.mirror_reason.startswith("auto") and target.path is not None:
            fallbacks = tuple(
                (other, config.mirrors[other].source(target.path))
                for other in config.mirror_order
                if other != target.mirror
            )
        jobs.append(
            Job(
                name=name,
                url=target.url,
                dest=dest,
                command=command,
                retry=RetryPolicy(resolved.retry, resolved.retry_delay),
                description=target.description,
                options=resolved,
                plan=plan,
                root=checked.root,
                resolved_dest=Path(checked.dests[name]),
                mirror=target.mirror,
                mirror_reason=target.mirror_reason,
                fallbacks=fallbacks,
                split=target.settings.get("split"),
            )
        )
    _refuse_shared_dirs(config, names, run_places, checked.dests)
    return jobs


def _refuse_shared_dirs(
    config: Config,
    names: Sequence[str],
    run_places: list[write_rules.Place],
    resolved_dests: dict[str, str],
) -> None:
    """ConfigError if a partial or backup dir of the run meets another one
    (write_rules.dir_problems). Only a dir that leaves its own dest can meet another
    target's, so only then are the other targets' options resolved; else only a
    target's own two dirs can meet."""
    dirs = [place for place in run_places if place.key in write_rules.DIR_KEYS]
    if any(write_rules.escapes(place, resolved_dests[str(place.owner)]) for place in dirs):
        every = list(dirs)
        selected = set(names)
        for other in config.targets:
            if other in selected:
                continue
            try:
                resolved = target_options(config, other)
            except ConfigError:
                continue  # its own run says so; its dirs are unknown
            every += write_rules.target_places(other, resolved_dests[other], resolved)
        found = write_rules.dir_problems(dirs, every)
    else:
        found = write_rules.own_dir_problems(dirs)
    if found:
        problems = [f"{config.path}: {problem}" for problem in found]
        raise ConfigError(problems[0], problems)


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
        where=dict(job.options.where),
    )
