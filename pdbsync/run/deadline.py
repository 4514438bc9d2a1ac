"""``--deadline``: finish before a time, rather than be killed at it.

A batch job has a time limit; a transfer that cannot finish before it only wastes the
time and leaves a half-updated tree. With a deadline the run starts no target that is
not expected to finish before it (expected: the target's last successful sync took
that long, from pdbsync.store.history; a target with no history is started, as nothing says it
will not fit), and stops the running ones cleanly :data:`DEFAULT_MARGIN_S` before it,
so the summary is written and the rsyncs have moved their partial files aside before
the scheduler's SIGTERM and, after its ``KillWait``, SIGKILL. Targets not started are
``skipped``, the stopped ones ``cancelled``, each with the reason.

Inside a Slurm job the deadline is the job's end (``SLURM_JOB_END_TIME``, or squeue's
answer on Slurm before 23.02) unless ``--deadline`` is given (``none`` turns it off).

Pure: the clock comes in as an argument, so the rule is tested without waiting.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pdbsync.batch.slurm import DEFAULT_MARGIN_S
from pdbsync.errors import UsageError

_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")


@dataclass(frozen=True)
class Deadline:
    """When the run must be over (``at``, Unix time) and where that came from.

    ``expected``: seconds each job is expected to take (by job name; missing: unknown).
    """

    at: float
    source: str  # "--deadline 12:00", "SLURM_JOB_END_TIME"
    margin: float = DEFAULT_MARGIN_S
    expected: Mapping[str, float] = field(default_factory=dict)

    @property
    def stop_at(self) -> float:
        """When running transfers are stopped: the deadline less the margin."""
        return self.at - self.margin

    def when(self) -> str:
        """The deadline as local wall-clock time, for messages."""
        return datetime.fromtimestamp(self.at).astimezone().isoformat(timespec="seconds")

    def refusal(self, name: str, now: float) -> str | None:
        """Why job ``name`` must not start at ``now`` (None: it may start)."""
        if now >= self.stop_at:
            return self.reached_reason()
        expected = self.expected.get(name)
        if expected is None or now + expected <= self.stop_at:
            return None
        return (
            f"not started: expected to take {_span(expected)} (its last sync), only "
            f"{_span(self.stop_at - now)} left before the deadline {self.when()} "
            f"({self.source}, less {self.margin:g}s to stop cleanly)"
        )

    def passed(self, now: float) -> bool:
        """True once running transfers must be stopped."""
        return now >= self.stop_at

    def reached_reason(self) -> str:
        return f"not started: the deadline {self.when()} ({self.source}) was reached"

    def stop_cause(self) -> str:
        """Why the running transfers are stopped, for their results' error."""
        return f"stopped {self.margin:g}s before the deadline {self.when()} ({self.source})"

    def to_dict(self) -> dict[str, object]:
        return {"at": self.when(), "source": self.source, "margin_s": self.margin}


def _span(seconds: float) -> str:
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def parse_deadline(text: str, now: float | None = None) -> float | None:
    """Unix time of a ``--deadline`` value; None for ``none``. ValueError with a reason.

    ``+2h30m`` (from now), ``1767268800`` (Unix time, as ``SLURM_JOB_END_TIME``),
    ``2026-01-01T12:00`` (local time unless it names a zone), ``18:30`` (the next 18:30,
    local time). Digits are ASCII (pdbsync.numbers), and the time must fall before
    :data:`~pdbsync.batch.slurm.MAX_UNIX_TIME`: later ones cannot even be shown as a date.
    """
    from pdbsync.batch.slurm import MAX_UNIX_TIME

    now = time.time() if now is None else now
    at = _parse_time(text, now)
    if at is not None and not at <= MAX_UNIX_TIME:
        raise ValueError(f"{text!r} is after the year 9998, the latest deadline there can be")
    return at


def _parse_time(text: str, now: float) -> float | None:
    from pdbsync.numbers import whole
    from pdbsync.store.views import parse_duration
    from pdbsync.times import parse_iso, unix_seconds

    if text.lower() == "none":
        return None
    if text.startswith("+"):
        return now + parse_duration(text[1:])
    if text.startswith("-"):
        raise ValueError(
            f"a deadline is a time to come, got {text!r} (from now is +DURATION: +{text[1:]})"
        )
    if text.isdigit():
        return float(whole(text))
    clock = _CLOCK.fullmatch(text)
    if clock:
        hour, minute, second = (int(part or 0) for part in clock.groups())
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"not a time of day: {text!r}")
        today = datetime.fromtimestamp(now).astimezone()
        at = today.replace(hour=hour, minute=minute, second=second, microsecond=0)
        if at.timestamp() <= now:
            at += timedelta(days=1)
        return at.timestamp()
    try:
        parsed = parse_iso(text)
    except ValueError:
        raise ValueError(
            f"expected +DURATION (+2h30m), a time (18:30), a date and time "
            f"(2026-01-01T12:00), Unix seconds or none, got {text!r}"
        ) from None
    try:
        return unix_seconds(parsed)  # without an offset: local time, as a person means it
    except ValueError:  # year 1 in a zone east of UTC
        raise ValueError(f"{text!r} is not a time this machine can represent") from None


def resolve_deadline(
    given: str | None,
    environ: Mapping[str, str],
    expected: Mapping[str, float] | None = None,
    margin: float = DEFAULT_MARGIN_S,
    now: float | None = None,
) -> Deadline | None:
    """The run's deadline: ``--deadline`` if given, else the Slurm job's end, else none.

    UsageError (one line naming the flag) for a value that cannot be read or that has
    already passed.
    """
    now = time.time() if now is None else now
    if given is not None:
        try:
            at = parse_deadline(given, now)
        except ValueError as exc:
            raise UsageError(f"--deadline: {exc}") from None
        source = f"--deadline {given}"
    else:
        from pdbsync.batch.slurm import job_end_time

        at, source = job_end_time(environ), f"the end of Slurm job {environ.get('SLURM_JOB_ID')}"
    if at is None:
        return None
    if at <= now and given is not None:
        raise UsageError(f"{source}: the deadline has already passed")
    return Deadline(at=at, source=source, margin=margin, expected=dict(expected or {}))
