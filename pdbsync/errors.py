"""Exit statuses and the exception types that map onto them.

Core modules raise a subclass of :class:`PdbSyncError` carrying the one-line message a
user sees; they never print or exit. ``cli.main`` is the single place that turns an
exception into a message on stderr and an exit status from :class:`ExitCode`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit statuses of ``pdb-sync`` (see docs/exit-codes.md)."""

    OK = 0  # every selected target succeeded
    SYNC_FAILED = 1  # one or more targets failed, or were skipped after a failure
    USAGE = 2  # bad command line, bad config, missing/unsuitable rsync: nothing ran
    INTERNAL = 70  # a bug in pdb-sync (EX_SOFTWARE): one line, the traceback in the log
    HANGUP = 129  # SIGHUP (terminal or ssh session closed): unfinished targets cancelled
    INTERRUPTED = 130  # SIGINT (Ctrl-C): unfinished targets marked cancelled
    USER1 = 138  # SIGUSR1 (e.g. a scheduler's early warning): unfinished targets cancelled
    USER2 = 140  # SIGUSR2: likewise
    TERMINATED = 143  # SIGTERM (Slurm time limit, scancel, kill)


class PdbSyncError(Exception):
    """An expected failure with a user-facing, single-line message."""

    exit_code: ExitCode = ExitCode.USAGE
    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(PdbSyncError):
    """The command line asks for something impossible (unknown target, bad flag value)."""


class ConfigError(PdbSyncError):
    """The config file is missing, unreadable, not TOML, or fails validation.

    ``problems`` holds every problem found (``config validate`` lists them all); the
    message is the first one, which is what ``sync`` shows.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class EnvironmentProblem(PdbSyncError):
    """The machine cannot run a sync: rsync missing or too old, destination unusable."""


class TargetsFailed(PdbSyncError):
    """A finished run that did not succeed, raised on request by
    ``raise_for_failures()`` (a sync's or plan's result), for callers who want an
    exception rather than a status to check. ``targets``: the names that did not succeed
    (empty when the run failed otherwise: an interrupt, or a summary that could not be
    written); ``exit_code``: what ``pdb-sync`` would exit with for the run."""

    targets: list[str]

    def __init__(self, message: str, targets: list[str], exit_code: ExitCode) -> None:
        super().__init__(message)
        self.targets = targets
        self.exit_code = exit_code
