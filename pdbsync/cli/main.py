"""The command line's root: the parser, the ``sync`` command and the one error boundary.

Only the :mod:`pdbsync.cli` package knows argparse: this module builds the parser and
the sibling modules add their command groups (``batch``, ``config``, ``env``,
``mirrors``, ``status``). Each subcommand is a pair ``_add_<cmd>`` / ``_cmd_<cmd>``;
``_cmd_sync`` turns flags into one :func:`pdbsync.api.sync_targets` or
:func:`pdbsync.api.plan_targets` call, where the run's policy lives for every caller, and
its summary into an exit status.
``main`` is the one error boundary: a :class:`PdbSyncError` becomes one line on stderr
and its exit code, anything else exit 70. docs/architecture.md follows one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pdbsync import __version__
from pdbsync.cli.batch import add_batch_flags, add_slurm
from pdbsync.cli.config import add_config, add_profile_target, list_profiles
from pdbsync.cli.context import Environment
from pdbsync.cli.env import add_env
from pdbsync.cli.mirrors import PreflightLines, add_mirrors, add_sync_mirror_flags
from pdbsync.cli.status import (
    add_completion,
    add_history,
    add_status,
    add_summary,
    add_sync_artifacts,
)
from pdbsync.errors import ExitCode, PdbSyncError, UsageError
from pdbsync.numbers import MAX_PARALLEL, flag_decimal, flag_whole, whole

if TYPE_CHECKING:
    from pdbsync.api import RunOptions

#: Short spellings of rsync option flags, as the Rust pdb-sync (and rsync) have them.
_SHORT_FLAGS = {"dry_run": ("-n",), "compress": ("-z",), "checksum": ("-c",)}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2 via ``main``.

    A value that starts with ``-`` and a digit (``--deadline -1h``, ``--retry -1``) is
    a value, not an unknown flag: no flag of ours looks like that, and the flag's own
    check then says what is wrong with it, not argparse's "expected one argument".
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-[0-9]")

    def error(self, message: str) -> NoReturn:
        # main prefixes "pdb-sync: error: "; say the subcommand, not the program again
        command = self.prog.removeprefix("pdb-sync").strip()
        where = f"{command}: " if command else ""
        raise UsageError(f"{where}{message} (see '{self.prog} --help')")


def _parallel(text: str) -> int:
    return flag_whole(1, MAX_PARALLEL)(text)


def _split(text: str) -> int | str:
    """``--split``: ``auto`` or a number of parts from 1 to MAX_PARALLEL."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = whole(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of parts or 'auto', got {text!r}"
        ) from None
    if not 1 <= value <= MAX_PARALLEL:
        raise argparse.ArgumentTypeError(f"must be 'auto' or 1..{MAX_PARALLEL}, got {value}")
    return value


def _max_per_host(text: str) -> int:
    """``--max-per-host``: rsyncs per mirror host at once, 1 to hosts.MAX_PER_HOST_LIMIT."""
    from pdbsync.rsync.hosts import MAX_PER_HOST_LIMIT

    return flag_whole(1, MAX_PER_HOST_LIMIT)(text)


def _non_negative_int(text: str) -> int:
    return flag_whole(0)(text)


def _retry_delay(text: str) -> float:
    """Seconds between retries: 0 to the config key's maximum (one day), digits only
    (pdbsync.numbers): ``inf``, ``nan`` or ``1e10`` would reach ``time.sleep``."""
    from pdbsync.config.options import MAX_RETRY_DELAY

    return flag_decimal(0, MAX_RETRY_DELAY)(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pdb-sync",
        description="Keep a local Protein Data Bank mirror in sync with parallel rsync.",
    )
    parser.add_argument("--version", action="version", version=f"pdb-sync {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (else PDB_SYNC_CONFIG, "
        "$XDG_CONFIG_HOME/pdb-sync/config.toml, ~/.config/pdb-sync/config.toml)",
    )
    parser.add_argument(
        "--pdb-dir", metavar="DIR", help="mirror root (overrides [paths] pdb_dir and PDB_SYNC_DIR)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more diagnostics on stderr (-v info, -vv debug)",
    )
    parser.add_argument(
        "--log-file", metavar="PATH", help="also write all diagnostics to PATH as JSON lines"
    )
    parser.add_argument("--traceback", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_sync(commands)
    add_config(commands, _Parser)
    add_mirrors(commands, _Parser)
    add_env(commands, _Parser)
    add_status(commands, _Parser)
    add_history(commands, _Parser)
    add_summary(commands, _Parser)
    add_slurm(commands, _Parser)
    add_completion(commands, _Parser)
    return parser


def _add_sync(commands: argparse._SubParsersAction) -> None:
    sync = commands.add_parser(
        "sync",
        help="run the sync targets defined in the config",
        description="Run one rsync per target, up to --parallel at once.",
    )
    sync.add_argument("names", nargs="*", metavar="NAME", help="targets to sync")
    sync.add_argument("--all", action="store_true", help="sync every target in the config")
    sync.add_argument("--list", action="store_true", help="list the targets and exit")
    sync.add_argument(
        "--parallel",
        type=_parallel,
        default=1,
        metavar="N",
        help=f"run up to N rsync processes at once (1..{MAX_PARALLEL}; default 1)",
    )
    sync.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: '[name] line' for people; json: one event per line",
    )
    sync.add_argument(
        "--summary", metavar="PATH", type=Path, help="write the run summary (JSON) to PATH"
    )
    add_sync_artifacts(sync)
    add_batch_flags(sync)
    sync.add_argument(
        "-d", "--dest", metavar="DIR", help="mirror root for this run (like --pdb-dir)"
    )
    add_sync_mirror_flags(sync)
    sync.add_argument(
        "--retry",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="retry a target up to N times on transient rsync failures",
    )
    sync.add_argument(
        "--retry-delay",
        type=_retry_delay,
        default=None,
        metavar="S",
        help="fixed seconds between retries (default: backoff 1, 2, 4 ... 30 s)",
    )
    sync.add_argument(
        "--split",
        type=_split,
        default=None,
        metavar="N|auto",
        help="run each selected target as N rsyncs over groups of its top-level "
        "directories, balanced by bytes (auto: from --parallel and the target's share); "
        "overrides the targets' split",
    )
    sync.add_argument(
        "--full",
        action="store_true",
        help='weekly targets (update_mode = "weekly") run a full sync this time',
    )
    sync.add_argument(
        "--max-per-host",
        type=_max_per_host,
        default=None,
        metavar="N",
        help="at most N rsyncs talk to one mirror host at once "
        "(default: [sync] max_per_host, else 4)",
    )
    sync.add_argument(
        "--fail-fast",
        nargs="?",
        const="wait",
        metavar="kill",
        help="after the first failure start no new target; "
        "--fail-fast=kill also stops the running ones",
    )
    sync.add_argument(
        "-v",
        "--verbose",
        dest="sync_verbose",
        action="count",
        default=0,
        help="like the global -v; with --dry-run also show each option and its layer",
    )
    _add_option_flags(sync)
    profiles = sync.add_argument_group("built-in profiles")
    profiles.add_argument(
        "--profile-list", action="store_true", help="list the built-in profiles and exit"
    )
    profiles.add_argument(
        "--profile-add",
        metavar="PROFILE",
        help="add a built-in profile as a target to the config (comments are kept)",
    )
    profiles.add_argument(
        "--profile-dry-run",
        action="store_true",
        help="with --profile-add: print the change, write nothing",
    )
    sync.add_argument(
        "--plan",
        action="store_true",
        help="change nothing: report per target what the sync would create, update, "
        "delete and transfer (rsync --dry-run --itemize-changes)",
    )
    sync.set_defaults(handler=_cmd_sync)


def _add_option_flags(sync: argparse.ArgumentParser) -> None:
    """One flag per row of the option table (``--no-X`` for booleans); default None.

    None means "not given": the config's layers decide. The values are checked by the
    core (pdbsync.config.options), so the messages match those of the config.
    """
    from pdbsync.config.options import OPTIONS

    group = sync.add_argument_group(
        "rsync options (override the config; see 'pdb-sync config show NAME')"
    )
    for spec in OPTIONS:
        if spec.cli is None or spec.rsync is None:
            continue
        dest = f"opt_{spec.key}"
        if spec.kind == "bool":
            group.add_argument(
                *_SHORT_FLAGS.get(spec.key, ()),
                spec.cli,
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{spec.help} (rsync {spec.rsync})" if spec.rsync else spec.help,
            )
        elif spec.kind == "list":
            group.add_argument(
                spec.cli, dest=dest, action="append", metavar="PATTERN", help=spec.help
            )
        else:
            # digits only (pdbsync.numbers); the range is check_value's, as in a config
            value_type = flag_whole() if spec.kind in ("int", "positive") else str
            group.add_argument(
                spec.cli,
                dest=dest,
                type=value_type,
                metavar=spec.key.upper(),
                help=f"{spec.help} (rsync {spec.rsync})",
            )


def _cmd_sync(args: argparse.Namespace, env: Environment) -> int:
    """Turn the flags into one :mod:`pdbsync.api` call and its summary into the exit
    code; the run's checks (output paths, targets, rsync, locks) are the library's."""
    from pdbsync.cli.batch import batch_run, expand_output_paths
    from pdbsync.config import load as config_module

    if args.profile_list:
        return list_profiles(args.format, env)
    config_path = config_module.find_config(args.config, env.environ)
    if args.profile_add:
        return add_profile_target(
            config_path, args.profile_add, args.profile_dry_run, args.format, env
        )
    expand_output_paths(args, env)  # %j %A %a %h in --summary, --events and --report
    config = config_module.load_config(config_path, mirror=args.mirror)
    if args.list:
        return _list_targets(config, args.format, env)
    _check_sync_flags(args)
    batch = batch_run(args, env)  # --rerun-failed, --shard, --deadline, --lock-timeout
    return _run_sync(args, env, config, _names(args, batch.targets), batch.api)


def _check_sync_flags(args: argparse.Namespace) -> None:
    """The flag combinations ``sync`` refuses (one line, exit 2)."""
    if args.fail_fast not in (None, "wait", "kill"):
        # `sync --fail-fast mmcif`: the optional value swallowed a target name.
        args.names.append(args.fail_fast)
        args.fail_fast = "wait"
    if args.all and args.names:
        raise UsageError("sync: give target names or --all, not both")
    if args.metrics is not None and args.plan:
        raise UsageError("sync: --metrics describes a sync; a --plan changes nothing to measure")
    if args.report is not None and args.plan:
        raise UsageError("sync: --report draws a sync's transfers; a --plan transfers nothing")


def _previewing(args: argparse.Namespace) -> bool:
    """``sync --dry-run`` (not ``--plan``): print the commands, run and write nothing."""
    return bool(args.opt_dry_run) and not args.plan


def _run_options(args: argparse.Namespace, batch: dict[str, object]) -> RunOptions:
    """The run's :class:`~pdbsync.api.RunOptions` from the flags (None: not given)."""
    from pdbsync.api import RunOptions
    from pdbsync.config.options import SPECS

    overrides = {key: getattr(args, f"opt_{key}", None) for key in SPECS}
    overrides["retry"], overrides["retry_delay"] = args.retry, args.retry_delay
    return RunOptions(
        parallel=args.parallel,
        overrides={key: value for key, value in overrides.items() if value is not None},
        summary=None if _previewing(args) else args.summary,
        fail_fast=args.fail_fast,
        pdb_dir=args.dest or args.pdb_dir,
        split=args.split,
        max_per_host=args.max_per_host,
        allow_vulnerable_rsync=args.allow_vulnerable_rsync,
        full=args.full,
        **batch,
    )


def _run_sync(
    args: argparse.Namespace,
    env: Environment,
    config: object,
    names: list[str] | None,
    batch: dict[str, object],
) -> int:
    """Run (or plan) with the renderer and ``--events`` as the event sink, under the
    signal handlers, and turn the result into the exit code."""
    from pdbsync import api
    from pdbsync.cli.interrupts import Interrupts, catching_signals

    options = _run_options(args, batch)
    renderer, on_event, events = _event_sinks(args, env)

    def before_run() -> None:
        """Every check has passed (pdbsync.api): open ``--log-file`` and ``--events``,
        so a refused run leaves neither behind."""
        if args.log_file:
            _configure_logging(args.verbose + args.sync_verbose, args.log_file, env)
        if events is not None:
            events.start()

    hooks = api.RunHooks(outputs=_output_files(args, _previewing(args)), before_run=before_run)
    run = api.plan_targets if args.plan else api.sync_targets
    interrupts = Interrupts()
    with catching_signals(interrupts):
        summary = run(
            config,
            names,
            options,
            on_event=on_event,
            cancel=interrupts,
            environ=env.environ,
            hooks=hooks,
        )
    events_error = events.close() if events is not None else None
    return _report(args, env, summary, renderer, events_error)


def _event_sinks(args: argparse.Namespace, env: Environment):
    """The renderer, the sink the run sends its events to (the renderer, with the
    options of each ``--dry-run`` command under ``-v``, preflight lines and the
    ``--events`` log) and that log (None without ``--events``)."""
    from pdbsync.report.event_log import EventLog

    verbose = args.verbose + args.sync_verbose > 0
    renderer = _renderer(args.format, env, show_stats=args.rsync_stats or verbose)
    if args.junit is not None:
        from pdbsync.report.artifacts import StderrTail

        renderer = StderrTail(renderer)  # JUnit failures carry rsync's last stderr lines
    if args.report is not None:
        from pdbsync.report.html import TraceRecorder

        renderer = TraceRecorder(renderer)  # the report's throughput charts and stderr lines
    previewing = _previewing(args)
    # only a dry run has options to show: a sync's lines keep the renderer's bulk path
    show_options = args.format == "text" and verbose and previewing
    on_event = _DryRunOptions(renderer) if show_options else renderer
    on_event = PreflightLines(on_event, args.format == "json", env)  # rsync's CVE floor, auto
    events = None
    if args.events is not None and not previewing:  # every event, warnings included
        on_event = events = EventLog.deferred(on_event, args.events)
    return renderer, on_event, events


def _report(
    args: argparse.Namespace, env: Environment, summary, renderer, events_error: str | None
) -> int:
    """Render the summary, write the artifacts, say what could not be written; the exit
    code is the summary's, or 1 when the ``--events`` file asked for is incomplete."""
    from pdbsync.cli.status import after_run

    if getattr(summary, "dry_run", False):  # a dry run: the commands were printed, nothing ran
        if args.summary is not None:
            _error_line(env, f"note: --dry-run writes no summary; {args.summary} was not written")
        return ExitCode.OK
    data = summary.to_dict()
    (renderer.plan_summary if args.plan else renderer.summary)(data)
    renderer.flush()
    for problem in (summary.write_error, events_error):
        if problem is not None:
            _error_line(env, f"error: {problem}")
    tails = renderer.tails() if args.junit is not None else {}
    kind = "plan" if args.plan else "sync"
    trace = renderer.trace if args.report is not None else None
    after_run(data, kind, args, env, tails, summary.history_error, trace)  # artifacts
    if events_error is not None and summary.exit_code == ExitCode.OK:
        return ExitCode.SYNC_FAILED  # the events file asked for is incomplete
    return int(summary.exit_code)


def _error_line(env: Environment, text: str) -> None:
    env.stderr.write(f"pdb-sync: {text}\n")
    env.stderr.flush()


def _output_files(args: argparse.Namespace, previewing: bool) -> dict[str, object]:
    """The files this run writes, by flag: ``api.sync``/``api.plan`` refuse them by the
    rules of pdbsync.config.write_rules (not in or around a target's tree, not the config, a
    state file or one another) with the rest of the run's checks, before ``before_run``
    opens ``--log-file`` and ``--events``."""
    files: dict[str, object] = {"--log-file": args.log_file}
    if not previewing:  # a --dry-run preview writes only the log
        files.update(
            {
                "--summary": args.summary,
                "--events": args.events,
                "--junit": args.junit,
                "--metrics": args.metrics,
                "--report": args.report,
            }
        )
    return files


def _opens_log_file_later(args: argparse.Namespace) -> bool:
    """A ``sync`` that runs opens its ``--log-file`` once the run has passed its checks
    (``before_run`` in :func:`_cmd_sync`); every other command opens it at once, once
    :func:`_refuse_command_outputs` allowed it."""
    return args.command == "sync" and not (args.profile_list or args.profile_add or args.list)


def _refuse_command_outputs(args: argparse.Namespace, env: Environment) -> None:
    """The files a command other than a running ``sync`` writes (its ``--log-file``, and
    what its parser lists in ``outputs``, such as ``summary merge -o``), refused by the
    write rules before any is opened (pdbsync.config.write_rules.refuse_command_outputs)."""
    from pdbsync.config import write_rules

    files = {"--log-file": args.log_file}
    listed = getattr(args, "outputs", None)
    if listed is not None:
        files.update(listed(args))
    write_rules.refuse_command_outputs(
        files,
        config=args.config,
        pdb_dir=getattr(args, "dest", None) or args.pdb_dir,
        environ=env.environ,
    )


def _names(args: argparse.Namespace, rerun: list[str] | None) -> list[str] | None:
    """The targets to run: ``--rerun-failed``'s, else the names given; None (all) for
    ``--all`` or a bare ``sync``."""
    if rerun is not None:
        return rerun
    return None if args.all or not args.names else args.names


def _renderer(output_format: str, env: Environment, show_stats: bool = False):
    from pdbsync.report.render import JsonRenderer, TextRenderer

    if output_format == "json":
        return JsonRenderer(env.stdout)
    return TextRenderer(
        env.stdout, env.stdout_isatty, env.color, env.columns, show_stats=show_stats
    )


class _DryRunOptions:
    """Renders events, adding under each ``dry_run`` event (text, ``-v``) every option
    with the layer it came from."""

    def __init__(self, renderer) -> None:
        self.renderer = renderer
        self.flush = renderer.flush

    def __call__(self, event: dict) -> None:
        from pdbsync.config.options import describe_values

        self.renderer.event(event)
        if event["type"] == "dry_run":
            for line in describe_values(event["options"], event["sources"], event["where"]):
                self.renderer.write(f"[{event['name']}]   {line}\n".encode())


def _list_targets(config, output_format: str, env: Environment) -> int:
    """``sync --list``: the rows of ``config list`` without ``preset``, one block each.

    ``config list`` is the table of the same rows; this layout puts the description first.
    """
    import orjson

    from pdbsync.config.load import source_text, target_rows

    keys = ("name", "description", "url", "dest", "mirror", "mirror_reason")
    rows = [{key: row[key] for key in keys} for row in target_rows(config)]
    if output_format == "json":
        env.stdout.write(orjson.dumps(rows) + b"\n")
    elif not rows:
        env.stdout.write(f"No targets in {config.path}\n".encode())
    else:
        width = max(len(row["name"]) for row in rows)
        lines = []
        for row in rows:
            lines.append(f"{row['name']:<{width}}  {row['description']}".rstrip())
            lines.append(f"{'':<{width}}    url:  {source_text(row)}")
            lines.append(f"{'':<{width}}    dest: {row['dest']}")
        env.stdout.write(("\n".join(lines) + "\n").encode())
    env.stdout.flush()
    return ExitCode.OK


def _configure_logging(verbose: int, log_file: str | None, env: Environment) -> None:
    from pdbsync import log

    level = {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")
    log.configure(level, env.stderr, log_file)  # a bad --log-file: UsageError, exit 2


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Entry point of ``pdb-sync``: returns the exit status (see :class:`ExitCode`)."""
    env = env or Environment.from_process()
    traceback = "--traceback" in (sys.argv[1:] if argv is None else argv)
    args = None
    try:
        parser = build_parser()
        if "_ARGCOMPLETE" in os.environ:  # a shell asks for completions (pdb-sync completion)
            from pdbsync.cli.completion import autocomplete

            autocomplete(parser)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(env.stderr)
            return ExitCode.USAGE
        verbose = args.verbose + getattr(args, "sync_verbose", 0)
        _configure_logging(verbose, None, env)
        if not _opens_log_file_later(args):
            _refuse_command_outputs(args, env)  # before the log file is opened
            if args.log_file:
                _configure_logging(verbose, args.log_file, env)
        return args.handler(args, env)
    except PdbSyncError as exc:
        if traceback:
            raise
        from pdbsync.report.render import visible

        env.stderr.write(f"pdb-sync: error: {visible(exc.message)}\n")
        env.stderr.flush()
        return exc.exit_code
    except KeyboardInterrupt:
        if traceback:
            raise
        env.stderr.write("pdb-sync: interrupted\n")
        return ExitCode.INTERRUPTED
    except Exception as exc:  # a bug: say so in one line, never as "a target failed" (1)
        if traceback:
            raise
        _open_log_file_late(args, env)
        return _internal_error(exc, env)


def _open_log_file_late(args: argparse.Namespace | None, env: Environment) -> None:
    """A bug hit a ``sync`` before ``before_run`` opened its ``--log-file``: open it now
    for the traceback, if the write rules allow the path (a refused one stays unopened)."""
    from pdbsync import log

    if args is None or not args.log_file or not _opens_log_file_later(args) or log.log_file():
        return
    # already on the way out with exit 70: a log file that cannot be had is just not used
    with contextlib.suppress(Exception):
        _refuse_command_outputs(args, env)
        _configure_logging(args.verbose + args.sync_verbose, args.log_file, env)


def entry() -> NoReturn:
    """The ``pdb-sync`` command (and ``python -m pdbsync``): :func:`main`, then exit
    without the interpreter's teardown.

    Why: by the time main returns, every file pdb-sync writes is written and closed,
    the pool's workers are joined and every rsync reaped; what is left is freeing the
    objects of every module a run imported, a cost no one waits for (docs/benchmarks.md).
    Streams and the log file are flushed first. A ``SystemExit`` (``--help``, argparse
    errors) exits normally.
    """
    env = Environment.from_process()
    code = main(env=env)
    from pdbsync import log

    log.shutdown()
    for stream in (env.stdout, env.stderr, sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (| head)
            stream.flush()
    os._exit(code)


def _internal_error(exc: Exception, env: Environment) -> int:
    """One line on stderr and exit 70 (EX_SOFTWARE); the traceback goes to the log file
    (``--log-file``) or, with ``-v``, to stderr, and the line says where it is."""
    import traceback as tb

    from pdbsync import log

    text = "".join(tb.format_exception(exc))
    where = log.write_traceback(text)
    if where is None and log.is_verbose():
        env.stderr.write(text)
        where = "above"
    pointer = f"traceback {where}" if where else "-v or --log-file PATH shows the traceback"
    env.stderr.write(f"pdb-sync: internal error: {exc!r} ({pointer}; please report it)\n")
    env.stderr.flush()
    return ExitCode.INTERNAL
