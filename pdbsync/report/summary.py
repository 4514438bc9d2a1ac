"""Per-target results and the run summary, validated and written atomically.

The summary is what cron jobs, Slurm epilogues and CI read after a run, so it always
carries every field (null when unknown, never omitted), is checked against
``schemas/summary.schema.json`` before it is written, and is replaced in one rename so
a reader never sees half a file.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import orjson

from pdbsync import __version__, contracts, outputs
from pdbsync.batch.origin import place_fields
from pdbsync.errors import ExitCode, TargetsFailed
from pdbsync.events import utc_now


class Status(StrEnum):
    """A target's outcome. A str enum, so it is its value in JSON (``"success"``) and
    compares equal to it (``result.status == "success"`` keeps working)."""

    SUCCESS = "success"
    FAILED = "failed"
    #: stopped, or never started, because the run was interrupted or cancelled
    CANCELLED = "cancelled"
    #: never started: ``fail_fast`` after a failure, a lock held too long, a deadline
    SKIPPED = "skipped"


#: Target statuses, in the order of the summary's counts.
STATUSES = tuple(status.value for status in Status)


#: The optional fields a weekly target's result carries (schemas/summary.schema.json).
UPDATE_FIELDS = ("mode", "weeks", "added", "modified", "obsolete", "fallback_reason")


@dataclass
class SyncResult:
    """The outcome of one target (all its attempts)."""

    name: str
    url: str
    dest: str
    status: str
    exit_code: int | None = None
    exit_meaning: str | None = None
    error: str | None = None
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float = 0.0
    files_transferred: int | None = None
    bytes_transferred: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    #: the registry mirror the last attempt used (None: the target's own url), and why
    mirror: str | None = None
    mirror_reason: str | None = None
    #: a split target's parts (pdbsync.run.parts.merge_results), each with its ``part``,
    #: ``status``, ``exit_code``, ``error``, ``attempts``, ``duration_s``, transfer counts
    #: and ``expected_bytes``; None for a target run as one rsync
    parts: list[dict[str, Any]] | None = None
    #: why it ran without its dest lock (the file system cannot lock there, or no lock
    #: file can be created: pdbsync.run.locks.preflight), so a monitor sees it; None: locked
    unlocked: str | None = None
    #: the pool slot the job ran in (1..parallel: the lowest free one when it started),
    #: the report's timeline lane; None: it never started, or a split target (its parts
    #: carry theirs)
    slot: int | None = None
    #: each attempt (its number, started_at, finished_at, exit_code, bytes_transferred),
    #: the report's timeline bars; None: no attempt started, a split target (see its
    #: parts), or a summary written before these fields existed
    attempt_log: list[dict[str, Any]] | None = None
    #: a weekly target's run (pdbsync.weekly.plan): ``full`` or ``weekly``, the weeks it
    #: applied (or, full, the dated weeks the mirror had), the ids per status list, and
    #: why a weekly target ran a full sync; all None (and left out) for other targets
    mode: str | None = None
    weeks: list[str] | None = None
    added: int | None = None
    modified: int | None = None
    obsolete: int | None = None
    fallback_reason: str | None = None

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # a worker's or a file's str: the enum

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in UPDATE_FIELDS:  # optional additions: absent, not null, for other targets
            if data[key] is None:
                del data[key]
        return data

    def update_fields(self) -> dict[str, Any]:
        """The weekly-update fields of this result (see :data:`UPDATE_FIELDS`)."""
        return {key: getattr(self, key) for key in UPDATE_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncResult:
        return cls(**data)

    @classmethod
    def without_outcome(
        cls, job: Any, status: str, error: str | None, attempts: int = 0
    ) -> SyncResult:
        """The result of a job that produced none of its own (skipped, written off, or a
        worker bug): ``job`` is anything with ``name``, ``url`` and ``dest``."""
        return cls(
            name=job.name,
            url=job.url,
            dest=str(job.dest),
            status=status,
            error=error,
            attempts=attempts,
            finished_at=utc_now(),
            mirror=getattr(job, "mirror", None),
            mirror_reason=getattr(job, "mirror_reason", None),
            unlocked=getattr(job, "unlocked", None),
        )


def status_counts(results: Iterable[SyncResult]) -> dict[str, int]:
    """How many results have each status; every status in :data:`STATUSES` is present."""
    counts = {status: 0 for status in STATUSES}
    for result in results:
        counts[result.status] += 1
    return counts


def run_exit_code(
    interrupted: str | None, all_succeeded: bool, write_error: str | None = None
) -> ExitCode:
    """The exit status of a sync or plan run (docs/exit-codes.md), in one place.

    A cancel decides first (the run did not finish, whatever its results): a signal
    gives 128 + its number, as a shell reports a process that signal killed, so wrappers
    that know that convention read it right; a library caller's cancel counts as Ctrl-C
    (130). Otherwise ``all_succeeded`` is the caller's notion of success (a plan also
    needs each plan), and a summary that could not be written fails the run.
    """
    if interrupted is not None:
        if interrupted in signal.Signals.__members__:
            return ExitCode(128 + signal.Signals[interrupted].value)
        return ExitCode.INTERRUPTED
    if all_succeeded and write_error is None:
        return ExitCode.OK
    return ExitCode.SYNC_FAILED


class RunOutcome:
    """What a sync's and a plan's result share for a caller: a target's result by name,
    ``ok`` and ``raise_for_failures()``, so a pipeline step reads as
    ``pdbsync.Mirror(path).sync(["mmcif"]).raise_for_failures()``."""

    results: Sequence[SyncResult]

    @property
    def exit_code(self) -> ExitCode:
        raise NotImplementedError

    def __getitem__(self, name: str) -> SyncResult:
        """The result of target ``name``; KeyError (naming it) if it is not in the run."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(result.name == name for result in self.results)

    @property
    def ok(self) -> bool:
        """True when ``pdb-sync`` would exit 0 for this run: every target succeeded (a
        plan: was planned), nothing interrupted it, its summary file was written."""
        return self.exit_code == ExitCode.OK

    def failed_targets(self) -> list[str]:
        """The names of the targets that did not succeed, in run order."""
        return [result.name for result in self.results if result.status != Status.SUCCESS]

    def raise_for_failures(self) -> Self:
        """This result if :attr:`ok`, else :class:`~pdbsync.errors.TargetsFailed` naming
        the targets that did not succeed (with their status and error) or what else
        failed the run."""
        if self.ok:
            return self
        names = self.failed_targets()
        reasons = []
        for name in names:
            result = self[name]
            why = f": {result.error}" if result.error else ""
            reasons.append(f"{name} ({result.status}{why})")
        interrupted = getattr(self, "interrupted", None)
        write_error = getattr(self, "write_error", None)
        if reasons:
            message = f"{len(names)} target{'s' if len(names) != 1 else ''} did not "
            message += f"succeed: {'; '.join(reasons)}"
        elif interrupted is not None:
            message = f"the run was interrupted ({interrupted})"
        elif write_error is not None:
            message = f"the summary was not written: {write_error}"
        else:
            message = "the run did not succeed"
        raise TargetsFailed(message, names, self.exit_code)


@dataclass
class Summary(RunOutcome):
    """The whole run: totals, timings and every target's result, in selection order."""

    results: list[SyncResult]
    parallel: int
    started_at: str
    finished_at: str
    duration_s: float
    interrupted: str | None = None  # what cancelled the run ("SIGTERM", ..., "cancel")
    #: why the summary file could not be written (the run then fails: exit 1)
    write_error: str | None = None
    #: where it ran: host, shard, Slurm ids (pdbsync.batch.origin.RunPlace); None: not recorded
    place: Any = None
    #: True when nothing ran because every target was a dry run (nothing is written)
    dry_run: bool = False
    #: why the run could not be recorded in the history (pdbsync.store.history); a warning only
    history_error: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        return status_counts(self.results)

    @property
    def exit_code(self) -> ExitCode:
        return run_exit_code(
            self.interrupted,
            all(result.status == "success" for result in self.results),
            self.write_error,
        )

    def to_dict(self) -> dict[str, Any]:
        counts = self.counts
        finished = [r for r in self.results if r.status in ("success", "failed")]
        average = sum(r.duration_s for r in finished) / len(finished) if finished else 0.0
        return {
            "v": contracts.SCHEMA_VERSION,
            "version": __version__,
            "parallel": self.parallel,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "interrupted": self.interrupted,
            "exit_code": int(self.exit_code),
            "totals": {
                "total": len(self.results),
                "succeeded": counts["success"],
                "failed": counts["failed"],
                "cancelled": counts["cancelled"],
                "skipped": counts["skipped"],
                "files_transferred": sum(r.files_transferred or 0 for r in self.results),
                "bytes_transferred": sum(r.bytes_transferred or 0 for r in self.results),
                "files_created": sum(r.stats.get("files_created", 0) for r in self.results),
                "files_deleted": sum(r.stats.get("files_deleted", 0) for r in self.results),
            },
            "timings": {
                "total_s": round(self.duration_s, 3),
                "average_s": round(average, 3),
            },
            "results": [result.to_dict() for result in self.results],
            **place_fields(self.place),
        }


class SummaryWriteError(outputs.OutputWriteError):
    """The summary could not be written (full disk, a FIFO nobody reads, ...): exit 1.

    A path that could never work (a directory, no permission) is refused before the run
    by :func:`pdbsync.outputs.check_output_path` instead, with exit 2.
    """


def validate_summary(data: dict[str, Any], schema: str = "summary") -> None:
    """Raise if ``data`` does not match ``schemas/<schema>.schema.json`` (``summary`` or
    ``plan``); a mismatch is a bug in pdb-sync, not bad input, hence AssertionError.
    """
    found = contracts.problems(data, schema)
    if found:
        raise AssertionError(f"{schema} does not match schemas/{schema}.schema.json: {found[0]}")


def summary_json(data: dict[str, Any]) -> bytes:
    """The bytes of a summary (or plan) file: indented JSON and a final newline."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


def write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to the ``--summary`` path by :func:`pdbsync.outputs.write_file`'s
    rules: a regular file is replaced in one rename (never half a file), a symlink is
    written through, a FIFO or device written in place; SummaryWriteError otherwise."""
    outputs.write_file(Path(path), payload, label=f"--summary {path}", error=SummaryWriteError)
