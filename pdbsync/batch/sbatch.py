"""``pdb-sync slurm script``: an sbatch script that runs pdb-sync the way Slurm needs.

What goes wrong when a sync is written as a batch script by hand (docs/unattended.md):
``--signal=TERM@N`` without ``B:`` reaches only ``srun`` steps, so a plain script never
gets it; without ``exec`` the shell, not pdb-sync, receives the signal and dies, and
pdb-sync runs on outside Slurm's view; without ``--error`` diagnostics land in the
``--output`` file; a job array needs per-task summaries and a merge afterwards. The
script printed here does each of these right and says why, line by line, so whoever
edits it later keeps them right.

Every value given reaches the script quoted for where it lands: shell lines with shell
quoting; ``#SBATCH`` lines by the rules sbatch reads them with (its own word splitting,
not the shell's: quotes and backslashes group, an unquoted ``#`` starts a comment, no line
holds a newline);
file names by Slurm's ``%`` patterns. A value that cannot be written there is refused,
naming its flag.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pdbsync.batch.slurm import DEFAULT_MARGIN_S
from pdbsync.errors import UsageError

#: The ``ScriptSpec`` fields that reach ``#SBATCH`` lines, and the flag each comes from.
_SBATCH_FIELDS = {
    "job_name": "--job-name",
    "time": "--time",
    "partition": "--partition",
    "account": "--account",
    "logs": "--logs",
}
#: A word sbatch reads back unchanged without quotes (and a shell too).
_SBATCH_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
#: Older sbatch (the ``packjob`` era) started a new heterogeneous job component at a
#: directive line holding either word anywhere, quoted or not, and blanked the word out;
#: 22.05 reads it as part of the value. A backslash inside the word satisfies both.
_COMPONENT_WORD = re.compile("hetjob|packjob", re.IGNORECASE)
#: The most seconds sbatch takes in ``--signal=...@S`` (a 16-bit field; above it sbatch
#: refuses the whole script: src/common/proc_args.c, ``get_signal_opts``).
MAX_SIGNAL_BEFORE = 0xFFFF
#: Characters that cannot be in a Slurm --output/--error pattern as themselves: a
#: backslash anywhere turns off every %-pattern, a slash makes a directory.
_NOT_IN_FILE_NAME = re.compile(r"[/\\]")


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


def check_spec(spec: ScriptSpec) -> None:
    """Refuse a value that no ``#SBATCH`` line or log file name can carry as given.

    A newline would end the directive and start a new line of the script; other control
    characters are no name, partition or path anyone means. A backslash in ``--logs``
    would turn off ``%A``/``%a`` in every log file name: every task would write one file.
    """
    for field_name, flag in _SBATCH_FIELDS.items():
        value = getattr(spec, field_name)
        if value is None:
            continue
        if value == "" and field_name in ("job_name", "logs", "time"):
            raise UsageError(f"slurm script: {flag} must not be empty")
        control = next((ch for ch in value if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
        if control is not None:
            what = "a newline" if control == "\n" else f"the control character {control!r}"
            raise UsageError(
                f"slurm script: {flag} {value!r}: holds {what}, which an #SBATCH line cannot carry"
            )
    if "\\" in spec.logs:
        raise UsageError(
            f"slurm script: --logs {spec.logs!r}: a backslash in a log file name turns off "
            "Slurm's %A and %a (every task would write one file); choose another directory"
        )


def sbatch_word(value: str) -> str:
    """``value`` written so sbatch reads it back from an ``#SBATCH`` line as one word.

    sbatch splits a directive line its own way (src/sbatch/opt.c): whitespace ends a
    word unless quoted, ``'`` and ``"`` group, a backslash takes the next character as it
    is (inside quotes too, but it does not keep a space in a word), an unquoted ``#``
    ends the line. So: plain words stay as they are, anything else goes in double quotes
    with ``"`` and ``\\`` escaped, and a backslash splits ``hetjob``/``packjob`` (older
    sbatch would start a new job component at such a line).
    """
    if _SBATCH_PLAIN.fullmatch(value) and not _COMPONENT_WORD.search(value):
        return value
    escaped = re.sub(r'(["\\])', r"\\\1", value)
    escaped = _COMPONENT_WORD.sub(lambda found: f"{found[0][:3]}\\{found[0][3:]}", escaped)
    return f'"{escaped}"'


def _directive(flag: str, value: str) -> str:
    return f"#SBATCH {flag}={sbatch_word(value)}"


def _pattern(text: str) -> str:
    """``text`` as itself in a file name pattern (Slurm's and pdb-sync's ``%`` letters)."""
    return text.replace("%", "%%")


def log_name(job_name: str) -> str:
    """The job name as the log files' name: a ``/`` or ``\\`` in it becomes ``_``."""
    return _NOT_IN_FILE_NAME.sub("_", job_name)


def sbatch_script(spec: ScriptSpec) -> str:
    """The whole script, ready for ``sbatch``; a UsageError for a value it cannot hold."""
    from pdbsync import __version__

    check_spec(spec)
    array = spec.array is not None and spec.array > 1
    stem = f"{_pattern(spec.logs)}/{_pattern(log_name(spec.job_name))}-"
    stem += "%A_%a" if array else "%j"
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
        _directive("--job-name", spec.job_name),
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
        _directive("--time", spec.time),
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
        _directive("--output", f"{stem}.out"),
        "# stderr apart: diagnostics never mix into the log or the events.",
        _directive("--error", f"{stem}.err"),
    ]
    if spec.partition:
        lines.append(_directive("--partition", spec.partition))
    if spec.account:
        lines.append(_directive("--account", spec.account))
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
    # job is no array task and has none), the merge job's shell expands the glob. Every
    # value is shell-quoted; the merge job's --output/--error are Slurm patterns (% as %%),
    # the wrap's paths are the files the tasks wrote (% as itself).
    job_id = '"${SLURM_ARRAY_JOB_ID}"'
    prefix = f"{_pattern(spec.logs)}/{_pattern(log_name(spec.job_name))}-"
    stem = _dq(_q(f"{spec.logs}/{log_name(spec.job_name)}-")) + "${SLURM_ARRAY_JOB_ID}"
    merge = [*base, "summary", "merge", "--expect", str(spec.array)]
    wrap = f"exec {' '.join(_dq(_q(part)) for part in merge)} -o {stem}.json {stem}_*.json"
    options = [
        _q(f"--job-name={spec.job_name}-merge"),
        f"--dependency=afterany:{job_id}",
        "--time=00:10:00",
        "--cpus-per-task=1",
        _q(f"--output={prefix}") + job_id + _q("-merge.out"),
        _q(f"--error={prefix}") + job_id + _q("-merge.err"),
    ]
    if spec.partition:
        options.append(_q(f"--partition={spec.partition}"))
    if spec.account:
        options.append(_q(f"--account={spec.account}"))
    return [
        "# The merge job: once every task has ended (afterany: whatever their exit), merge",
        "# the tasks' summaries into one. It names the shards that are missing and the",
        "# targets in no shard or in two, and exits 0 only when every shard is there and",
        "# every target succeeded.",
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
