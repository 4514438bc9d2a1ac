"""What pdb-sync reads from a Slurm job's environment, and the ``%j %A %a %h`` patterns.

Inside a batch job Slurm sets ``SLURM_JOB_ID``; inside an array task also
``SLURM_ARRAY_JOB_ID``, ``SLURM_ARRAY_TASK_ID``, ``SLURM_ARRAY_TASK_COUNT``,
``SLURM_ARRAY_TASK_MIN`` (and ``_MAX``, ``_STEP``). They decide this task's shard
(pdbsync.batch.shards), are recorded in ``run_started`` and the summary, and name per-task
files: ``--summary logs/s-%A_%a.json`` gives each task its own file, as ``#SBATCH
--output`` does with the same letters.

Every number is read strictly (pdbsync.numbers): a variable that is set but is not a
whole number in range is a usage error naming it, never ignored, since an ignored
``SLURM_ARRAY_TASK_ID`` would make every task of the array run every target.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdbsync.errors import UsageError
from pdbsync.numbers import env_whole

#: Seconds before the deadline (the job's end, pdbsync.run.deadline) at which running
#: transfers are stopped. Stopping takes about a second (rsync's grace at worst),
#: writing the summary and the history a moment more; the margin leaves room for a
#: loaded node and a clock a few seconds off, and stays under Slurm's default KillWait
#: should the job's own SIGTERM come first.
DEFAULT_MARGIN_S = 15.0


#: The patterns a ``--summary``/``--events`` path may hold, and what each stands for.
PATTERNS = {
    "j": "the Slurm job id (SLURM_JOB_ID)",
    "A": "the array's job id (SLURM_ARRAY_JOB_ID; the job id outside an array)",
    "a": "the array task id (SLURM_ARRAY_TASK_ID)",
    "h": "the host name",
    "%": "a literal %",
}
_PATTERN = re.compile(r"%(.?)")


#: Slurm's own ceiling: ``MaxArraySize`` is at most 4000001, so task ids are below it.
MAX_ARRAY_SIZE = 4_000_001


def _int(environ: Mapping[str, str], key: str, low: int = 0) -> int | None:
    return env_whole(environ, key, low, MAX_ARRAY_SIZE)


@dataclass(frozen=True)
class SlurmJob:
    """The Slurm job (and array task) this process runs in."""

    job_id: str
    array_job_id: str | None = None
    array_task_id: int | None = None
    array_task_count: int | None = None
    array_task_min: int | None = None
    array_task_max: int | None = None
    array_task_step: int | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SlurmJob | None:
        """The job of this environment; None outside Slurm (no ``SLURM_JOB_ID``)."""
        job_id = environ.get("SLURM_JOB_ID", "").strip()
        if not job_id:
            task = environ.get("SLURM_ARRAY_TASK_ID")
            if task:  # never taken for "outside Slurm": that would run every target
                raise UsageError(
                    f"SLURM_ARRAY_TASK_ID={task!r} is set but SLURM_JOB_ID is not: "
                    "unset it, or run inside the Slurm job"
                )
            return None
        return cls(
            job_id=job_id,
            array_job_id=environ.get("SLURM_ARRAY_JOB_ID", "").strip() or None,
            array_task_id=_int(environ, "SLURM_ARRAY_TASK_ID"),
            array_task_count=_int(environ, "SLURM_ARRAY_TASK_COUNT", 1),
            array_task_min=_int(environ, "SLURM_ARRAY_TASK_MIN"),
            array_task_max=_int(environ, "SLURM_ARRAY_TASK_MAX"),
            array_task_step=_int(environ, "SLURM_ARRAY_TASK_STEP", 1),
        )

    @property
    def in_array(self) -> bool:
        """An array task: ``SLURM_ARRAY_TASK_ID`` is set (whatever else is missing)."""
        return self.array_task_id is not None

    def to_dict(self) -> dict[str, Any]:
        """What the summary and ``run_started`` record (schemas/summary.schema.json)."""
        return {
            "job_id": self.job_id,
            "array_job_id": self.array_job_id,
            "array_task_id": self.array_task_id,
        }


def job_end_time(environ: Mapping[str, str]) -> float | None:
    """When this Slurm job's time limit ends (Unix time), or None (no job, no limit).

    ``SLURM_JOB_END_TIME`` where Slurm sets it (23.02 and later); older versions set no
    such variable, so ``squeue`` is asked (``%e``, the job's expected end, local time).
    Any trouble asking (no squeue, a slow controller) means no deadline, never a failure.
    """
    import subprocess

    from pdbsync.times import parse_iso, unix_seconds

    job_id = environ.get("SLURM_JOB_ID", "").strip()
    if not job_id:
        return None
    end = env_whole(environ, "SLURM_JOB_END_TIME", 0, MAX_UNIX_TIME)
    if end is not None:
        return float(end) if end else None
    try:
        listed = subprocess.run(
            ["squeue", "--noheader", "--jobs", job_id, "--format", "%A %e"],
            capture_output=True,
            text=True,
            timeout=SQUEUE_TIMEOUT_S,
            env=dict(environ),
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listed.splitlines():  # an array's first task lists the whole array
        fields = line.split()
        if len(fields) == 2 and fields[0] == job_id:
            try:
                return unix_seconds(parse_iso(fields[1]))  # naive: local time
            except ValueError:
                return None  # "N/A", "Unknown": no limit
    return None


#: The latest Unix time pdb-sync takes for a deadline: 9998-12-31 UTC, inside
#: ``datetime``'s range (to 9999-12-31) whatever the local time zone.
MAX_UNIX_TIME = 253_370_678_400

#: How long ``squeue`` gets to say when the job ends before the run goes on without.
SQUEUE_TIMEOUT_S = 5.0


def host_name() -> str:
    """This machine's name as Slurm's nodes go by it (the part before the first dot)."""
    return os.uname().nodename.split(".", 1)[0] or "localhost"


def expand_path(text: str, flag: str, slurm: SlurmJob | None, host: str) -> str:
    """``text`` with ``%j``, ``%A``, ``%a``, ``%h`` and ``%%`` replaced.

    A letter that needs a Slurm job outside one, or any other ``%x``, is a UsageError
    naming ``flag``: a path that silently kept ``%j`` would make every run overwrite
    the same file.
    """

    def one(match: re.Match[str]) -> str:
        letter = match.group(1)
        if letter == "%":
            return "%"
        if letter == "h":
            return host
        if letter not in PATTERNS:
            known = ", ".join(f"%{key}" for key in PATTERNS)
            raise UsageError(f"{flag} {text}: unknown pattern %{letter} (known: {known})")
        if slurm is None:
            raise UsageError(
                f"{flag} {text}: %{letter} is {PATTERNS[letter].split(' (')[0]}, but this "
                "is not a Slurm job (SLURM_JOB_ID is not set)"
            )
        if letter == "j":
            return slurm.job_id
        if letter == "A":
            return slurm.array_job_id or slurm.job_id
        if slurm.array_task_id is None:
            raise UsageError(
                f"{flag} {text}: %a is the array task id, but this job is not an array task "
                "(SLURM_ARRAY_TASK_ID is not set)"
            )
        return str(slurm.array_task_id)

    return _PATTERN.sub(one, text)
