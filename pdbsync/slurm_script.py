"""``pdb-sync slurm script``: an sbatch script that runs pdb-sync the way Slurm needs.

What goes wrong when a sync is written as a batch script by hand (docs/unattended.md):
``--signal=TERM@N`` without ``B:`` reaches only ``srun`` steps, so a plain script never
gets it; without ``exec`` the shell, not pdb-sync, receives the signal and dies, and
pdb-sync runs on outside Slurm's view; without ``--error`` diagnostics land in the
``--output`` file; a job array needs per-task summaries and a merge afterwards. The
script printed here does each of these right and says why, line by line, so whoever
edits it later keeps them right.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pdbsync.deadline import DEFAULT_MARGIN_S


@dataclass(frozen=True)
class ScriptSpec:
    """What the script is asked to do (the flags of ``slurm script``)."""

    targets: tuple[str, ...] = ()  # empty: --all
    array: int | None = None  # N tasks; None: one job
    time: str = "06:00:00"
    partition: str | None = None
    account: str | None = None
    job_name: str = "pdb-sync"
    parallel: int = 4
    retry: int = 3
    signal_before: int = 120  # 0: no early signal
    logs: str = "logs"
    config: str | None = None  # absolute path, or None: the default lookup
    pdb_dir: str | None = None
    sync_args: tuple[str, ...] = ()
    command: str = "pdb-sync"


def _q(text: str) -> str:
    return shlex.quote(text)


def sbatch_script(spec: ScriptSpec) -> str:
    """The whole script, ready for ``sbatch``."""
    from pdbsync import __version__

    array = spec.array is not None and spec.array > 1
    stem = f"{spec.logs}/{spec.job_name}-{'%A_%a' if array else '%j'}"
    made_by = f"pdb-sync {__version__}"
    lines = [
        "#!/bin/bash",
        f"# pdb-sync as a Slurm {'job array' if array else 'batch job'}, written by "
        f"`pdb-sync slurm script` ({made_by}).",
        f"# Submit it from the directory that holds {spec.logs}/ (Slurm opens --output and",
        "# --error before the script runs, and does not create directories):",
        f"#     mkdir -p {_q(spec.logs)} && sbatch THIS_FILE",
    ]
    if array:
        lines += [
            f"# Each of the {spec.array} tasks syncs its own share of the targets: pdb-sync",
            "# reads SLURM_ARRAY_TASK_ID, _COUNT and _MIN and runs that shard (--shard I/N),",
            "# balanced by each target's size at its last sync; together the tasks run every",
            "# target exactly once. The first task also submits the merge job (below).",
        ]
    lines += [
        "",
        "# The name squeue and sacct show; the log files below are named after it.",
        f"#SBATCH --job-name={spec.job_name}",
    ]
    if array:
        lines += [
            f"# {spec.array} tasks, ids 0 to {spec.array - 1}; %A below is the array's job id,"
            " %a the task id.",
            f"#SBATCH --array=0-{spec.array - 1}",
        ]
    lines += [
        "# The time limit. Inside the job pdb-sync takes its end (SLURM_JOB_END_TIME, or",
        "# squeue's on Slurm before 23.02) as its --deadline: it starts no target that its",
        "# last sync says would not fit, and stops running transfers cleanly",
        f"# {DEFAULT_MARGIN_S:g} s before the end (--deadline none turns this off).",
        f"#SBATCH --time={spec.time}",
    ]
    if spec.signal_before:
        lines += [
            f"# SIGTERM {spec.signal_before} s before the limit (Slurm may send it up to 60 s"
            " earlier), to",
            "# the batch shell itself: that is what B: means. Without B: the signal goes only",
            "# to job steps started with srun, and this script starts none.",
            f"#SBATCH --signal=B:TERM@{spec.signal_before}",
        ]
    else:
        lines += ["# No early signal: at the limit Slurm sends SIGTERM to every process anyway."]
    lines += [
        f"# One CPU per rsync at most: pdb-sync runs up to {spec.parallel} at once.",
        f"#SBATCH --cpus-per-task={spec.parallel}",
        "# stdout: pdb-sync's log for people (progress as plain lines every 5 s, no \\r).",
        f"#SBATCH --output={stem}.out",
        "# stderr apart: diagnostics never mix into the log or the events.",
        f"#SBATCH --error={stem}.err",
    ]
    if spec.partition:
        lines.append(f"#SBATCH --partition={spec.partition}")
    if spec.account:
        lines.append(f"#SBATCH --account={spec.account}")
    lines += ["", "set -uo pipefail", ""]
    base = [spec.command]
    if spec.config:
        base += ["--config", spec.config]
    if spec.pdb_dir:
        base += ["--pdb-dir", spec.pdb_dir]
    if array:
        lines += _merge_step(spec, base)
    sync = [*base, "sync", *(spec.targets or ("--all",))]
    sync += ["--parallel", str(spec.parallel), "--retry", str(spec.retry), "--format", "text"]
    sync += ["--summary", f"{stem}.json", "--events", f"{stem}.events.jsonl", *spec.sync_args]
    lines += [
        "# exec: pdb-sync replaces this shell, so the signal reaches it (without exec bash",
        "# would die of it and leave pdb-sync running outside Slurm's view). On SIGTERM",
        "# pdb-sync stops its rsyncs, marks unfinished targets cancelled, writes the",
        "# summary and exits 143. --summary and --events: one file each per "
        + ("task (%A, %a)." if array else "job (%j)."),
        "# A target another run holds locked is waited for (--lock-timeout S to give up).",
        "exec " + _wrapped(sync),
        "",
    ]
    return "\n".join(lines)


def _merge_step(spec: ScriptSpec, base: list[str]) -> list[str]:
    """The lines that submit the merge job, from the array's first task, once."""
    # The wrap is in double quotes: the task's shell puts in the array's job id (the merge
    # job is no array task and has none), the merge job's shell expands the glob.
    prefix = f"{spec.logs}/{spec.job_name}-${{SLURM_ARRAY_JOB_ID}}"
    stem = _dq(_q(f"{spec.logs}/{spec.job_name}-")) + "${SLURM_ARRAY_JOB_ID}"
    merge = [*base, "summary", "merge", "--expect", str(spec.array)]
    wrap = f"exec {' '.join(_dq(_q(part)) for part in merge)} -o {stem}.json {stem}_*.json"
    options = [
        f"--job-name={spec.job_name}-merge",
        '--dependency=afterany:"${SLURM_ARRAY_JOB_ID}"',
        "--time=00:10:00",
        "--cpus-per-task=1",
        f'--output="{prefix}-merge.out"',
        f'--error="{prefix}-merge.err"',
    ]
    if spec.partition:
        options.append(f"--partition={_q(spec.partition)}")
    if spec.account:
        options.append(f"--account={_q(spec.account)}")
    return [
        "# The merge job: once every task has ended (afterany: whatever their exit), merge",
        "# the tasks' summaries into one. It reports missing and duplicated shards and",
        "# targets, and exits 0 only when every shard is there and every target succeeded.",
        "# Submitted by the first task only, and not again if Slurm requeues it.",
        'if [ "${SLURM_ARRAY_TASK_ID}" = "${SLURM_ARRAY_TASK_MIN}" ] '
        '&& [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then',
        "  sbatch --parsable " + " \\\n    ".join(options) + " \\",
        f'    --wrap="{wrap}" \\',
        '    || echo "pdb-sync: warning: the merge job was not submitted" >&2',
        "fi",
        "",
    ]


def _dq(text: str) -> str:
    """``text`` safe inside double quotes (the shell still expands what we add after)."""
    return "".join("\\" + ch if ch in '\\"$`' else ch for ch in text)


def _wrapped(argv: list[str]) -> str:
    """A command line, quoted, broken before each option so it reads one flag a line."""
    parts: list[str] = []
    for arg in argv:
        if arg.startswith("--") and parts:
            parts.append(" \\\n    ")
        elif parts:
            parts.append(" ")
        parts.append(_q(arg))
    return "".join(parts)
