"""The ``env`` subcommand (``env doctor``): the argparse side only; see pdbsync.doctor."""

from __future__ import annotations

import argparse

from pdbsync.cli.context import Environment
from pdbsync.errors import ExitCode

_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def _size(text: str) -> int:
    from pdbsync.config.options import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_env(commands: argparse._SubParsersAction, parser_class: type) -> None:
    """``env doctor``."""
    env = commands.add_parser(
        "env",
        help="check this machine: rsync, config, disk, mirrors, state",
        description="Environment diagnostics.",
    )
    actions = env.add_subparsers(dest="env_command", metavar="ACTION", parser_class=parser_class)
    doctor = actions.add_parser(
        "doctor",
        help="every check ok/warn/fail with the reason and what to do "
        "(exit 1 on a failure; with --strict also on a warning)",
    )
    doctor.add_argument("--format", choices=("text", "json"), default="text")
    doctor.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    doctor.add_argument(
        "--min-free",
        type=_size,
        metavar="SIZE",
        help="warn when pdb_dir has less free space (default [doctor] min_free, else 10G)",
    )
    doctor.set_defaults(handler=_cmd_env_doctor)
    env.set_defaults(handler=_cmd_env_help, env_parser=env)


def _cmd_env_help(args: argparse.Namespace, env: Environment) -> int:
    args.env_parser.print_help(env.stderr)
    return ExitCode.USAGE


def _cmd_env_doctor(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync.doctor import exit_code, run_checks

    checks = run_checks(args.config, env.environ, args.pdb_dir, args.min_free)
    code = exit_code(checks, args.strict)
    if args.format == "json":
        data = {"v": 1, "exit_code": code, "checks": [check.to_dict() for check in checks]}
        env.stdout.write(orjson.dumps(data) + b"\n")
        env.stdout.flush()
        return code
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        lines.append(f"{_MARKS[check.status]}  {check.name:<{width}}  {check.reason}")
        if check.fix:
            lines.append(f"      {'':<{width}}  -> {check.fix}")
    counts = {status: sum(c.status == status for c in checks) for status in _MARKS}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failure(s)")
    env.stdout.write(("\n".join(lines) + "\n").encode())
    env.stdout.flush()
    return code
