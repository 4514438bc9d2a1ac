"""The argparse side of running pdb-sync as a batch job: ``sync --lock-timeout``,
``--deadline``, ``--shard``, ``--events``, ``--rerun-failed``, the ``%j %A %a %h``
patterns of ``--summary``/``--events``, ``summary merge`` and ``slurm script``.

The work happens in pdbsync.run.locks and pdbsync.run.deadline, pdbsync.batch (shards,
slurm, sbatch) and pdbsync.report (event_log, merge); this module turns arguments into
their plain values.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdbsync.cli.context import Environment
from pdbsync.errors import ExitCode, UsageError
from pdbsync.numbers import MAX_PARALLEL, flag_decimal, flag_whole


def _seconds(text: str) -> float:
    return flag_decimal(0)(text)


def add_batch_flags(sync: argparse.ArgumentParser) -> None:
    """The ``sync`` flags for unattended and array runs (docs/unattended.md)."""
    group = sync.add_argument_group("batch jobs and job arrays (see docs/unattended.md)")
    group.add_argument(
        "--lock-timeout",
        type=_seconds,
        metavar="S",
        help="a target whose dest another run holds locked is waited for; after S "
        "seconds give up on it (skipped, holder named)",
    )
    group.add_argument(
        "--deadline",
        default="auto",
        metavar="TIME",
        help="finish before TIME (+2h30m, 18:30, 2026-01-01T06:00, Unix seconds, none): "
        "start no target expected to overrun, stop the rest cleanly --deadline-margin "
        "before (default: the Slurm job's end inside a job)",
    )
    group.add_argument(
        "--deadline-margin",
        type=_seconds,
        default=None,
        metavar="S",
        help="stop running transfers S seconds before the deadline (default 15)",
    )
    group.add_argument(
        "--shard",
        default="auto",
        metavar="I/N",
        help="run only share I of N of the targets, balanced by size (default: from "
        "SLURM_ARRAY_TASK_* inside an array task; none: all)",
    )
    group.add_argument(
        "--events",
        metavar="PATH",
        help="also append every event as JSON Lines to PATH, whatever --format prints",
    )
    group.add_argument(
        "--rerun-failed",
        metavar="SUMMARY",
        help="run only the targets that did not succeed in SUMMARY (a --summary file)",
    )


@dataclass
class BatchRun:
    """What the batch flags come to for one ``sync``."""

    targets: list[str] | None = None  # from --rerun-failed (None: the names given)
    api: dict[str, Any] = field(default_factory=dict)  # keyword arguments of api.sync


def expand_output_paths(args: argparse.Namespace, env: Environment) -> None:
    """Replace ``%j %A %a %h`` in ``--summary``, ``--events`` and ``--report``
    (pdbsync.batch.slurm): each task of an array writes its own."""
    from pdbsync.batch.slurm import SlurmJob, expand_path, host_name

    flags = [("--summary", "summary"), ("--events", "events"), ("--report", "report")]
    given = [(flag, name) for flag, name in flags if getattr(args, name, None) is not None]
    if not given:
        return
    slurm, host = SlurmJob.from_environ(env.environ), host_name()
    for flag, name in given:
        setattr(args, name, Path(expand_path(str(getattr(args, name)), flag, slurm, host)))


def batch_run(args: argparse.Namespace, env: Environment) -> BatchRun:
    """Check the batch flags together and turn them into api.sync's (or api.plan's)
    arguments; notes for the user (what ``--rerun-failed`` adds) go to stderr."""
    from pdbsync.batch.slurm import DEFAULT_MARGIN_S

    run = BatchRun()
    if args.rerun_failed is not None:
        if args.names or args.all:
            raise UsageError("sync: --rerun-failed picks the targets; give no names or --all")
        run.targets, note = rerun_targets(Path(args.rerun_failed))
        if note is not None:
            env.stderr.write(f"pdb-sync: note: {note}\n")
            env.stderr.flush()
    margin = DEFAULT_MARGIN_S if args.deadline_margin is None else args.deadline_margin
    # a plan covers this shard and says what the deadline would skip: same checks as a sync
    run.api = {"deadline": args.deadline, "deadline_margin": margin, "shard": args.shard}
    if args.plan:
        if args.lock_timeout is not None:
            raise UsageError("sync: --lock-timeout applies to a sync; a --plan changes nothing")
        return run
    run.api["lock_timeout"] = args.lock_timeout
    return run


def rerun_targets(path: Path) -> tuple[list[str], str | None]:
    """The targets of summary ``path`` (one run's, or merged) that did not succeed, and
    a note naming the shards a merge is missing, if any.

    A target whose outcome is unknown did not succeed: in a merge, the targets of a
    missing shard are in no result but in the other shards' ``all_targets``
    (``merge.missing_targets``), and are rerun. Missing shards whose targets no shard
    lists (unsharded runs merged with ``--expect``) cannot be rerun by name: UsageError.
    """
    from pdbsync.report.artifacts import is_plan, load_summary

    label = f"--rerun-failed {path}"
    data = load_summary(path, label)
    if is_plan(data):
        raise UsageError(f"{label}: a plan, not a sync summary")
    names = [result["name"] for result in data["results"] if result["status"] != "success"]
    merged = data.get("merge")
    if not merged:
        return names, None
    unknown = [name for name in merged["missing_targets"] if name not in names]
    missing = ", ".join(str(index) for index in merged["missing_shards"])
    expected = merged["expected_shards"]
    if missing and not any(shard["index"] is not None for shard in merged["shards"]):
        raise UsageError(
            f"{label}: shards {missing} of {expected} are missing from the merge and no "
            "summary lists their targets: rerun them by name or with --all"
        )
    if not missing and not unknown:
        return names, None
    what = f"shards {missing} of {expected} are missing from the merge" if missing else ""
    if unknown:
        what += f"{'; ' if what else ''}no shard reported {', '.join(unknown)}: rerun too"
    return names + unknown, f"{label}: {what}"


# -- summary merge -------------------------------------------------------------------------


def add_summary_merge(actions: argparse._SubParsersAction) -> None:
    merge = actions.add_parser(
        "merge",
        help="merge the summaries of a job array's shards into one",
        description="Validate each shard's summary and write one summary with every "
        "target; name the shards that are missing and the targets in no shard or in "
        "two. Shards that cannot be one run (of different jobs or counts, one shard "
        "twice) are refused. Exit 0 only when every shard is there and every target succeeded.",
    )
    merge.add_argument("files", nargs="+", metavar="FILE", help="the shards' --summary files")
    merge.add_argument("-o", "--output", metavar="OUT", type=Path, help="write the merge here")
    merge.add_argument(
        "--expect",
        type=_shard_count,
        metavar="N",
        help="how many shards there should be (default: as the summaries say)",
    )
    merge.add_argument("--format", choices=("text", "json"), default="text")
    # -o is refused by the write rules with --log-file before either is opened (cli.main)
    merge.set_defaults(handler=_cmd_summary_merge, outputs=lambda args: {"-o": args.output})


def _shard_count(text: str) -> int:
    """``--expect`` and ``--array``: 1 to as many tasks as a Slurm array can have (a
    larger count is no run's, and its missing shards would not fit in memory)."""
    from pdbsync.batch.shards import MAX_SHARDS

    return flag_whole(1, MAX_SHARDS)(text)


def _script_parallel(text: str) -> int:
    """``slurm script --parallel``: what ``sync --parallel`` takes, so the job does not
    queue only to be refused."""
    return flag_whole(1, MAX_PARALLEL)(text)


def _signal_before(text: str) -> int:
    """Seconds for ``#SBATCH --signal=B:TERM@S``, in the range sbatch takes."""
    from pdbsync.batch.sbatch import MAX_SIGNAL_BEFORE

    return flag_whole(0, MAX_SIGNAL_BEFORE)(text)


def _cmd_summary_merge(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync import outputs
    from pdbsync.report import merge
    from pdbsync.report.summary import summary_json

    files = [Path(file) for file in args.files]
    if args.output is not None:
        outputs.check_output_path(args.output, "-o")
        merge.check_output(args.output, files)
    inputs = merge.load_shards(files)
    merged = merge.merge(inputs, args.expect)
    if args.output is not None:
        outputs.write_file(args.output, summary_json(merged), label=f"-o {args.output}")
    if args.format == "json":
        env.stdout.write(orjson.dumps(merged) + b"\n")
    else:
        env.stdout.write(merge.report(merged).encode())
    env.stdout.flush()
    ok = merged["merge"]["complete"] and merged["totals"]["succeeded"] == len(merged["results"])
    return ExitCode.OK if ok else ExitCode.SYNC_FAILED


# -- slurm script --------------------------------------------------------------------------


def add_slurm(commands: argparse._SubParsersAction, parser_class: type) -> None:
    slurm = commands.add_parser(
        "slurm",
        help="print a ready sbatch script for pdb-sync (optionally a job array)",
        description="Slurm helpers.",
    )
    actions = slurm.add_subparsers(
        dest="slurm_command", metavar="ACTION", parser_class=parser_class
    )
    script = actions.add_parser(
        "script",
        help="print an sbatch script that runs the sync (as a job array with --array N)",
        description="Print a commented sbatch script: --signal=B:TERM@N with exec, separate "
        "--output/--error, a summary and events file per task, and (with --array) a merge "
        "job that runs after every task. Submit it with sbatch.",
    )
    script.add_argument("names", nargs="*", metavar="NAME", help="targets (default: all)")
    script.add_argument("--array", type=_shard_count, metavar="N", help="split over N array tasks")
    script.add_argument(
        "--time", default="06:00:00", metavar="T", help="time limit (sbatch --time)"
    )
    script.add_argument("--partition", metavar="P", help="sbatch --partition")
    script.add_argument("--account", metavar="A", help="sbatch --account")
    script.add_argument("--job-name", default="pdb-sync", metavar="NAME")
    script.add_argument(
        "--parallel", type=_script_parallel, default=4, metavar="N", help="rsyncs at once per task"
    )
    script.add_argument("--retry", type=flag_whole(0), default=3, metavar="N", help="sync --retry")
    script.add_argument(
        "--signal-before",
        type=_signal_before,
        default=120,
        metavar="S",
        help="SIGTERM the task S seconds before its time limit (0: only the limit's own)",
    )
    script.add_argument(
        "--logs", default="logs", metavar="DIR", help="where logs, summaries and events go"
    )
    script.add_argument(
        "--sync-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for pdb-sync sync (repeat; e.g. --sync-arg=--delete)",
    )
    script.set_defaults(handler=_cmd_slurm_script)
    slurm.set_defaults(handler=_cmd_slurm_help, slurm_parser=slurm)


def _cmd_slurm_help(args: argparse.Namespace, env: Environment) -> int:
    args.slurm_parser.print_help(env.stderr)
    return ExitCode.USAGE


def _cmd_slurm_script(args: argparse.Namespace, env: Environment) -> int:
    from pdbsync.batch.sbatch import ScriptSpec, sbatch_script

    config = str(Path(args.config).resolve()) if args.config else None
    spec = ScriptSpec(
        targets=tuple(args.names),
        array=args.array,
        time=args.time,
        partition=args.partition,
        account=args.account,
        job_name=args.job_name,
        parallel=args.parallel,
        retry=args.retry,
        signal_before=args.signal_before,
        logs=args.logs,
        config=config,
        pdb_dir=args.pdb_dir,
        sync_args=tuple(args.sync_arg),
    )
    env.stdout.write(sbatch_script(spec).encode())
    env.stdout.flush()
    return ExitCode.OK
