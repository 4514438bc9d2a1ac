"""The ``mirrors`` subcommand, ``sync``'s mirror and rsync-safety flags and how their
pre-run step is shown: the argparse side only.

The work happens in pdbsync.mirrors.registry (the registry), pdbsync.mirrors.probe
(asking daemons) and pdbsync.preflight (the rsync floor and the ``auto`` choice).
"""

from __future__ import annotations

import argparse
from typing import Any

from pdbsync.cli.context import Environment
from pdbsync.errors import ExitCode
from pdbsync.numbers import flag_decimal, flag_whole


def _write(env: Environment, text: str) -> None:
    env.stdout.write(text.encode())
    env.stdout.flush()


def _positive_seconds(text: str) -> float:
    """``mirrors test --timeout``: more than 0, at most a minute, digits only
    (pdbsync.numbers): ``inf``, ``nan`` or ``1e9`` would reach the socket."""
    value = flag_decimal(0, 60)(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


_probes = flag_whole(1, 10)


# -- sync: flags and the step before the run ------------------------------------------


def add_sync_mirror_flags(sync: argparse.ArgumentParser) -> None:
    """``sync --mirror ID`` and ``--allow-vulnerable-rsync``."""
    sync.add_argument(
        "--mirror",
        metavar="ID",
        help="mirror of every target that gives a path, for this run: rcsb, pdbj, pdbe, "
        "wwpdb (or us, jp, uk/eu, global), a [mirrors.NAME], or auto (lowest latency); "
        "a target's url still wins",
    )
    sync.add_argument(
        "--allow-vulnerable-rsync",
        action="store_true",
        help="run even with an rsync older than 3.4.0 when the config sets "
        "[sync] require_safe_rsync = true",
    )


class PreflightLines:
    """The event sink ``sync`` hands the library: the warnings ``api.sync``/``api.plan``
    send before a run (pdbsync.preflight: rsync's floor, mirror auto; pdbsync.run.locks: a
    file system that cannot lock) go to stderr, the rest to ``sink``.

    Each ``warning`` is one line on stderr and, in ``--format json``, also the event on
    stdout (which carries JSON only); notes (which mirror auto chose, and why) are
    stderr lines only. An ``--events`` file wraps this sink (pdbsync.report.event_log), so it
    records every warning in both formats.
    """

    def __init__(self, sink: Any, json_format: bool, env: Environment) -> None:
        from pdbsync.messages import lines_sink

        self.sink = sink
        self.json_format = json_format
        self.env = env
        self.sink_lines = lines_sink(sink)
        self.flush = getattr(sink, "flush", None) or (lambda: None)

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "warning":
            self.env.stderr.write(f"pdb-sync: warning: {event['message']}\n")
            self.env.stderr.flush()
            if not self.json_format:
                return
        self.sink(event)

    def output_lines(self, lines: Any) -> None:
        """Runs of output lines pass straight on (pdbsync.run.collector.Collector)."""
        self.sink_lines(lines)

    def note(self, text: str) -> None:
        self.env.stderr.write(f"pdb-sync: note: {text}\n")
        self.env.stderr.flush()


# -- mirrors ------------------------------------------------------------------------------


def add_mirrors(commands: argparse._SubParsersAction, parser_class: type) -> None:
    """``mirrors list`` and ``mirrors test``."""
    command = commands.add_parser(
        "mirrors",
        help="the rsync mirrors of the wwPDB archive: list them, test them",
        description="The mirror registry (built-in and [mirrors.NAME] of the config).",
    )
    actions = command.add_subparsers(
        dest="mirrors_command", metavar="ACTION", parser_class=parser_class
    )
    listing = actions.add_parser("list", help="ids, aliases, names, regions and rsync sources")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(handler=_cmd_mirrors_list)
    test = actions.add_parser(
        "test",
        help="connect to each mirror's rsync daemon: reachability, latency, protocol "
        "(exit 1 if one is unreachable)",
    )
    test.add_argument("ids", nargs="*", metavar="ID", help="mirrors to test (default: all)")
    test.add_argument("--format", choices=("text", "json"), default="text")
    test.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=None,
        metavar="S",
        help="seconds one connect or read may take (default 3)",
    )
    test.add_argument(
        "--probes", type=_probes, default=None, metavar="N", help="probes per mirror (default 3)"
    )
    test.set_defaults(handler=_cmd_mirrors_test)
    command.set_defaults(handler=_cmd_mirrors_help, mirrors_parser=command)


def _cmd_mirrors_help(args: argparse.Namespace, env: Environment) -> int:
    args.mirrors_parser.print_help(env.stderr)
    return ExitCode.USAGE


def _registry(args: argparse.Namespace, env: Environment) -> dict:
    """The registry with the config's ``[mirrors.NAME]``; built-ins when there is no config."""
    from pdbsync.config import load as config_module
    from pdbsync.mirrors import registry as mirrors

    path = config_module.find_config(args.config, env.environ)
    if not path.exists() and not args.config and not env.environ.get("PDB_SYNC_CONFIG"):
        return mirrors.registry()
    return config_module.load_config(path).mirrors


def _cmd_mirrors_list(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    rows = [
        {
            "id": m.id,
            "aliases": list(m.aliases),
            "name": m.name,
            "region": m.region,
            "url": m.url,
            "source": "built-in" if m.builtin else "config",
        }
        for m in _registry(args, env).values()
    ]
    if args.format == "json":
        env.stdout.write(orjson.dumps(rows) + b"\n")
        env.stdout.flush()
        return ExitCode.OK
    header = {"id": "ID", "aliases": "ALIASES", "name": "NAME", "region": "REGION", "url": "URL"}
    table = [header] + [{**row, "aliases": ", ".join(row["aliases"]) or "-"} for row in rows]
    widths = {key: max(len(str(row[key])) for row in table) for key in header}
    lines = ["  ".join(f"{row[k]:<{widths[k]}}" for k in header).rstrip() for row in table]
    _write(env, "\n".join(lines) + "\n")
    return ExitCode.OK


def _cmd_mirrors_test(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync.errors import UsageError
    from pdbsync.mirrors import probe
    from pdbsync.mirrors import registry as mirrors

    registry = _registry(args, env)
    chosen = []
    for given in args.ids:
        mirror_id = mirrors.canonical_id(given, registry)
        if mirror_id is None:
            raise UsageError(f"mirrors test: {mirrors.unknown_mirror(given, registry)}")
        chosen.append(mirror_id)
    ids = list(dict.fromkeys(chosen)) or list(registry)
    results = probe.probe_all(
        [(i, registry[i].url) for i in ids],
        probes=args.probes or probe.PROBES,
        timeout=args.timeout or probe.PROBE_TIMEOUT,
    )
    code = ExitCode.OK if all(r.reachable for r in results) else ExitCode.SYNC_FAILED
    if args.format == "json":
        best = probe.ranked(results)
        data = {
            "results": [r.to_dict() for r in results],
            "fastest": best[0].id if best else None,
            "exit_code": int(code),
        }
        env.stdout.write(orjson.dumps(data) + b"\n")
        env.stdout.flush()
        return code
    _write(env, "\n".join(_result_lines(results)) + "\n")
    return code


def _result_lines(results: list) -> list[str]:
    header = ("ID", "REACHABLE", "LATENCY", "PROTOCOL", "MODULE", "DETAIL")
    rows = [header]
    for r in results:
        module = {True: "listed", False: "not listed", None: "-"}[r.module_listed]
        rows.append(
            (
                r.id,
                "yes" if r.reachable else "no",
                f"{r.latency_ms:.1f} ms" if r.latency_ms is not None else "-",
                r.protocol or "-",
                f"{r.module} ({module})",
                r.error or f"{r.host}:{r.port}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(f"{c:<{widths[i]}}" for i, c in enumerate(row)).rstrip() for row in rows]
