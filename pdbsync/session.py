"""One config, many runs: :class:`Mirror`, the session object of the library API.

``pdbsync.sync(path, ...)`` reads the config on every call and takes every setting as a
keyword; a pipeline that lists the targets, plans and then syncs wants the config read
once and the settings kept in one value. A :class:`Mirror` holds the loaded config and
the environment; its runs go through the same functions as the command line's
(:func:`pdbsync.api.sync_targets`, :func:`pdbsync.api.plan_targets`), so they get every
check and record a ``pdb-sync sync`` gets. See docs/api.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from pdbsync import api
from pdbsync.api import ConfigLike, RunOptions, TargetsLike
from pdbsync.config.load import Config
from pdbsync.errors import UsageError
from pdbsync.report.summary import Summary
from pdbsync.run.collector import CancelFlag, EventSink
from pdbsync.run.jobs import Job
from pdbsync.run.plan_mode import PlanSummary

_OPTION_NAMES = frozenset(field.name for field in fields(RunOptions))


class Mirror:
    """A local PDB mirror as its config describes it.

    ``config``: a path, a loaded :class:`~pdbsync.config.load.Config`, or None to find it
    as the command line does (``PDB_SYNC_CONFIG``, then the user's config directory); it
    is read and validated here, once (a bad one raises ConfigError now, not at the first
    run). ``options``: the :class:`~pdbsync.api.RunOptions` every run starts from.
    ``environ``: the environment the runs see (default ``os.environ``: ``PDB_SYNC_DIR``,
    the state directory, Slurm's variables).
    """

    config: Config
    environ: Mapping[str, str]
    options: RunOptions

    def __init__(
        self,
        config: ConfigLike = None,
        options: RunOptions | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.config = api.load_config(config, environ=self.environ)
        self.options = RunOptions() if options is None else options

    def __repr__(self) -> str:
        return f"Mirror({str(self.config.path)!r})"

    @property
    def targets(self) -> list[str]:
        """The config's target names, in the config's order."""
        return list(self.config.targets)

    def options_with(self, options: RunOptions | None = None, **changes: Any) -> RunOptions:
        """``options`` (default: this mirror's) with ``changes`` applied: the run's
        options. An unknown name is a UsageError naming it; a bad value, the field's."""
        unknown = sorted(set(changes) - _OPTION_NAMES)
        if unknown:
            known = ", ".join(sorted(_OPTION_NAMES))
            raise UsageError(f"unknown run option {unknown[0]!r} (RunOptions has: {known})")
        return replace(self.options if options is None else options, **changes)

    def prepare(
        self, targets: TargetsLike = None, options: RunOptions | None = None, **changes: Any
    ) -> list[Job]:
        """The fully resolved jobs a sync would run (one rsync each, exact argv), running
        nothing: what ``pdb-sync sync --dry-run`` prints."""
        chosen = self.options_with(options, **changes)
        return api.prepare(
            self.config,
            targets,
            overrides=chosen.overrides,
            pdb_dir=chosen.pdb_dir,
            environ=self.environ,
        )

    def plan(
        self,
        targets: TargetsLike = None,
        options: RunOptions | None = None,
        *,
        on_event: EventSink | None = None,
        cancel: CancelFlag | None = None,
        **changes: Any,
    ) -> PlanSummary:
        """What :meth:`sync` would do, changing nothing (``rsync --dry-run
        --itemize-changes`` per target). ``targets``: names (a str is one name; None: all;
        an empty list: none). ``options`` and ``changes`` (``parallel=4``...) as for
        :meth:`options_with`."""
        return api.plan_targets(
            self.config,
            targets,
            self.options_with(options, **changes),
            on_event=on_event,
            cancel=cancel,
            environ=self.environ,
        )

    def sync(
        self,
        targets: TargetsLike = None,
        options: RunOptions | None = None,
        *,
        on_event: EventSink | None = None,
        cancel: CancelFlag | None = None,
        **changes: Any,
    ) -> Summary:
        """Sync ``targets`` (a str is one name; None: all; an empty list: none), up to
        ``parallel`` rsyncs at once. ``options`` and ``changes`` as for
        :meth:`options_with`; ``on_event`` gets every event (:class:`EventSink`); a set
        ``cancel`` stops the run cleanly. Returns the :class:`Summary`: ``result["mmcif"]``,
        ``.ok``, ``.raise_for_failures()``; the exceptions and checks are those of
        :func:`pdbsync.sync`."""
        return api.sync_targets(
            self.config,
            targets,
            self.options_with(options, **changes),
            on_event=on_event,
            cancel=cancel,
            environ=self.environ,
        )
