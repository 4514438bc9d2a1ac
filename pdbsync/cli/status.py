"""The ``status``, ``history``, ``summary`` and ``completion`` subcommands, and what
``sync`` does after its run (record it, write ``--junit``/``--metrics``, append to
``$GITHUB_STEP_SUMMARY``): the argparse side only.

The work happens in pdbsync.store.history (the history), pdbsync.store.views (reading it for people)
and pdbsync.report.artifacts (the formats); this module wires them to arguments and output.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType
from typing import Any

from pdbsync.cli.context import Environment
from pdbsync.errors import ExitCode, PdbSyncError, UsageError
from pdbsync.numbers import flag_whole


def _write(env: Environment, data: bytes) -> None:
    env.stdout.write(data)
    env.stdout.flush()


def _warn(env: Environment, message: str) -> None:
    env.stderr.write(f"pdb-sync: warning: {message}\n")
    env.stderr.flush()


def _duration(text: str) -> float:
    from pdbsync.store.views import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_limit = flag_whole(0)


# -- status --------------------------------------------------------------------------------


def add_status(commands: argparse._SubParsersAction, parser_class: type) -> None:
    status = commands.add_parser(
        "status",
        help="when each target last ran and last succeeded (exit 1 if older than --max-age)",
        description="Per target: the last sync, the last success and how long ago, from "
        "the history every run records. With --max-age, exit 1 when a target's last "
        "success is older or missing (a ready check for cron, monitors and CI).",
    )
    status.add_argument("names", nargs="*", metavar="NAME", help="targets (default: all)")
    status.add_argument(
        "--max-age",
        type=_duration,
        metavar="DURATION",
        help="exit 1 when a selected target's last success is older than this "
        "(36h, 2d, 90m, 1d12h) or there is none",
    )
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(handler=_cmd_status)


def _weekly_states(config: Any, directory: Path) -> dict[str, dict[str, Any]]:
    """Each weekly target's update state (pdbsync.store.updates) by target name: the one
    of its source url, the newest if several destinations were synced under the name."""
    from pdbsync.store import updates

    by_name: dict[str, dict[str, Any]] = {}
    try:
        known = updates.read_updates(directory)
    except PdbSyncError:
        return {}
    for entry in known.values():
        name = entry.get("name")
        target = config.targets.get(name) if isinstance(name, str) else None
        if target is None or (target.url and entry.get("source") != target.url):
            continue
        newest = max(entry.get("last_full") or "", entry.get("last_weekly") or "")
        held = by_name.get(name)
        if held is None or newest > max(held.get("last_full") or "", held.get("last_weekly") or ""):
            by_name[name] = entry
    return by_name


def _cmd_status(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync.config.load import find_config, load_config, target_rows
    from pdbsync.store import history as state
    from pdbsync.store import views as status
    from pdbsync.times import format_utc

    config = load_config(find_config(args.config, env.environ))
    config_names = [row["name"] for row in target_rows(config)]
    directory = state.state_dir(env.environ)
    states = state.target_states(directory)
    unknown = [name for name in args.names if name not in config_names and name not in states]
    if unknown:
        raise UsageError(
            f"status: unknown target {unknown[0]!r}: not in {config.path} and never synced"
        )
    now = status.now_utc()
    rows = status.target_statuses(states, config_names, args.names, now, args.max_age)
    status.add_updates(rows, _weekly_states(config, directory))
    ready = status.is_ready(rows)
    if args.format == "json":
        data = {
            "v": state.STATE_VERSION,
            "state_dir": str(directory),
            "now": format_utc(now),
            "max_age_s": args.max_age,
            "ok": ready,
            "targets": [row.to_dict() for row in rows],
        }
        _write(env, orjson.dumps(data) + b"\n")
    else:
        _write(env, status.status_table(rows, now, args.max_age).encode())
    return ExitCode.OK if ready else ExitCode.SYNC_FAILED


# -- history -------------------------------------------------------------------------------


def add_history(commands: argparse._SubParsersAction, parser_class: type) -> None:
    history = commands.add_parser(
        "history",
        help="past sync and plan runs, newest first",
        description="Past runs (or one target's runs), newest first, from the history "
        "every sync and plan records.",
    )
    history.add_argument("name", nargs="?", metavar="NAME", help="one target's runs")
    history.add_argument(
        "--limit",
        type=_limit,
        default=20,
        metavar="N",
        help="show the newest N (default 20; 0: all the history keeps)",
    )
    history.add_argument("--format", choices=("text", "json"), default="text")
    history.set_defaults(handler=_cmd_history)


def _cmd_history(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync.store import history as state
    from pdbsync.store import views as status

    directory = state.state_dir(env.environ)
    if args.name is None:
        entries = state.last_runs(args.limit, directory)
        shown = status.history_lines(entries)
    else:
        entries = state.target_history(args.name, args.limit, directory)
        shown = status.target_history_lines(args.name, entries)
    if args.format == "json":
        _write(env, orjson.dumps(entries) + b"\n")
    else:
        _write(env, shown.encode())
    return ExitCode.OK


# -- summary show --------------------------------------------------------------------------


#: The formats of ``summary show`` (pdbsync.report.artifacts.FORMATS; a test keeps them equal).
SUMMARY_FORMATS = ("text", "json", "markdown", "junit", "prometheus", "html")


def add_summary(commands: argparse._SubParsersAction, parser_class: type) -> None:
    summary = commands.add_parser(
        "summary",
        help="show a --summary file as text, JSON, Markdown, JUnit XML, Prometheus metrics "
        "or an HTML report",
        description="Turn a summary file (sync or plan) into the format a CI system or "
        "monitor reads.",
    )
    actions = summary.add_subparsers(
        dest="summary_command", metavar="ACTION", parser_class=parser_class
    )
    show = actions.add_parser("show", help="print FILE in --format")
    show.add_argument("file", metavar="FILE", help="a summary written by --summary ('-': stdin)")
    show.add_argument("--format", choices=SUMMARY_FORMATS, default="text")
    show.add_argument(
        "--events",
        metavar="EVENTS.jsonl",
        type=Path,
        action="append",
        help="html: the run's --events file(s), for throughput charts and stderr lines",
    )
    show.set_defaults(handler=_cmd_summary_show)
    from pdbsync.cli.batch import add_summary_merge

    add_summary_merge(actions)
    summary.set_defaults(handler=_cmd_summary_help, summary_parser=summary)


def _cmd_summary_help(args: argparse.Namespace, env: Environment) -> int:
    args.summary_parser.print_help(env.stderr)
    return ExitCode.USAGE


def _cmd_summary_show(args: argparse.Namespace, env: Environment) -> int:
    from pdbsync.report import artifacts

    path = Path("/dev/stdin" if args.file == "-" else args.file)
    data = artifacts.load_summary(path, f"summary show {args.file}")
    if args.events and args.format != "html":
        raise UsageError("summary show: --events is read by --format html only")
    if args.format == "html":
        from pdbsync.report import html

        if artifacts.is_plan(data):
            raise UsageError(f"summary show {args.file}: --format html shows a sync, not a plan")
        trace = html.read_event_logs(args.events, data) if args.events else None
        _write(env, html.report_html(data, trace).encode())
        return ExitCode.OK
    _write(env, artifacts.render(data, args.format))
    return ExitCode.OK


# -- completion ----------------------------------------------------------------------------


def add_completion(commands: argparse._SubParsersAction, parser_class: type) -> None:
    from pdbsync.cli.completion import SHELLS

    completion = commands.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh, fish)",
        description="Print a completion script: subcommands, options, target names from "
        "the config and mirror ids. E.g. 'eval \"$(pdb-sync completion bash)\"' in ~/.bashrc.",
    )
    completion.add_argument("shell", choices=SHELLS, metavar="SHELL", help=", ".join(SHELLS))
    completion.set_defaults(handler=_cmd_completion)


def _cmd_completion(args: argparse.Namespace, env: Environment) -> int:
    from pdbsync.cli.completion import script

    _write(env, script(args.shell).encode())
    return ExitCode.OK


# -- after a sync or plan ------------------------------------------------------------------


def add_sync_artifacts(sync: argparse.ArgumentParser) -> None:
    """``sync --junit``, ``--metrics``, ``--report`` and ``--rsync-stats``."""
    sync.add_argument(
        "--junit", metavar="PATH", type=Path, help="write the run as JUnit XML (one testcase each)"
    )
    sync.add_argument(
        "--metrics",
        metavar="PATH",
        type=Path,
        help="write Prometheus metrics for node_exporter's textfile collector",
    )
    sync.add_argument(
        "--report",
        metavar="PATH",
        type=Path,
        help="write the run as one self-contained HTML page: timeline, targets, failures",
    )
    sync.add_argument(
        "--rsync-stats",
        action="store_true",
        help="text mode: show rsync's --stats block (hidden by default; -v shows it too)",
    )


def _artifacts() -> ModuleType:
    """pdbsync.report.artifacts, imported only by a run that writes one (XML and all)."""
    from pdbsync.report import artifacts

    return artifacts


def _html_report(data: dict[str, Any], trace: Any) -> bytes:
    """The ``--report`` page (pdbsync.report.html, imported only by a run that writes one)."""
    from pdbsync.report import html

    return html.report_html(data, trace).encode()


def _states(env: Environment) -> dict[str, Any] | None:
    """Every target's latest runs from the history (pdbsync.store.history), or None when
    it cannot be read."""
    from pdbsync.store import history as state

    try:
        return state.target_states(state.state_dir(env.environ))
    except state.StateError:
        return None


def after_run(
    data: dict[str, Any],
    kind: str,
    args: argparse.Namespace,
    env: Environment,
    stderr_tails: dict[str, list[str]] | None = None,
    history_error: str | None = None,
    trace: Any = None,
) -> None:
    """Say why the run is not in the history (the library records it, for every caller:
    ``history_error`` is ``Summary.history_error``), then write ``--junit``,
    ``--metrics``, ``--report`` (with ``trace``, the run's pdbsync.report.html.RunTrace)
    and ``$GITHUB_STEP_SUMMARY``.

    The state and the step summary are conveniences nobody asked for by flag: failing
    them is one warning line, never a failed run. A ``--junit``/``--metrics`` file the
    user asked for that cannot be written fails the run like the summary (exit 1; a run
    already failed or interrupted keeps its code), after every other file is written.
    """
    from pdbsync import outputs

    if history_error is not None:
        _warn(env, f"run not recorded in the history: {history_error}")

    def states() -> dict[str, Any] | None:  # for --metrics: the index with this run in it
        return None if history_error is not None else _states(env)

    failures = []
    for flag, path, render in (
        ("--junit", args.junit, lambda: _artifacts().junit_xml(data, stderr_tails)),
        ("--metrics", args.metrics, lambda: _artifacts().prometheus_text(data, states())),
        ("--report", getattr(args, "report", None), lambda: _html_report(data, trace)),
    ):
        if path is None:
            continue
        try:
            outputs.write_file(path, render(), label=f"{flag} {path}")
        except outputs.OutputWriteError as exc:
            failures.append(exc)
    step_summary = env.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with outputs.open_for_append(Path(step_summary), "GITHUB_STEP_SUMMARY") as stream:
                stream.write(_artifacts().markdown(data).encode() + b"\n")
        except (PdbSyncError, OSError) as exc:
            _warn(env, f"GITHUB_STEP_SUMMARY not written: {getattr(exc, 'message', exc)}")
    if failures:
        for failure in failures[:-1]:
            env.stderr.write(f"pdb-sync: error: {failure.message}\n")
        failure = failures[-1]
        failure.exit_code = ExitCode(data["exit_code"] or ExitCode.SYNC_FAILED)
        raise failure
