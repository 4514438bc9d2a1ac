"""The ``config`` subcommand and the ``sync --profile-*`` actions: argparse side only.

Apart from pdbsync.cli.main so that module stays the parser, the sync command and the
error boundary; the work itself happens in pdbsync.config.edit, pdbsync.config.profiles and
pdbsync.config.options.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pdbsync.cli.context import Environment
from pdbsync.errors import ExitCode

if TYPE_CHECKING:
    from pdbsync.config.load import Config


def list_profiles(output_format: str, env: Environment) -> int:
    import orjson

    from pdbsync.config.profiles import PROFILES

    rows = [
        {
            "name": p.name,
            "description": p.description,
            "url": p.url,
            "path": p.path,
            "dest": p.dest,
            "preset": p.preset,
            "options": dict(p.options),
        }
        for p in PROFILES.values()
    ]
    if output_format == "json":
        env.stdout.write(orjson.dumps(rows) + b"\n")
    else:
        width = max(len(row["name"]) for row in rows)
        lines = []
        for row in rows:
            lines.append(f"{row['name']:<{width}}  {row['description']}")
            lines.append(f"{'':<{width}}    url:    {row['url']}")
            if row["path"]:
                lines.append(f"{'':<{width}}    path:   {row['path']} (on [sync] mirror)")
            lines.append(f"{'':<{width}}    dest:   {row['dest']}")
            lines.append(f"{'':<{width}}    preset: {row['preset'] or '-'}")
            for key, value in row["options"].items():
                lines.append(f"{'':<{width}}    option: {key} = {orjson.dumps(value).decode()}")
        env.stdout.write(("\n".join(lines) + "\n").encode())
    env.stdout.flush()
    return ExitCode.OK


def add_profile_target(
    path: Path, name: str, dry_run: bool, output_format: str, env: Environment
) -> int:
    """``sync --profile-add``: the diff (dry run) or a confirmation; one JSON object in json mode.

    In json mode stdout carries JSON and nothing else, so a script can read ``written``
    and ``diff`` without parsing prose.
    """
    import orjson

    from pdbsync.config.profiles import add_profile

    diff = add_profile(path, name, dry_run=dry_run)
    if output_format == "json":
        result = {"profile": name, "config": str(path), "written": not dry_run, "diff": diff}
        env.stdout.write(orjson.dumps(result) + b"\n")
    elif dry_run:
        env.stdout.write(diff.encode())
    else:
        env.stdout.write(f"Added target {name!r} to {path}\n".encode())
    env.stdout.flush()
    return ExitCode.OK


def add_config(commands: argparse._SubParsersAction, parser_class: type) -> None:
    """The ``config`` subcommand and its actions."""
    config = commands.add_parser(
        "config",
        help="create, check, list and migrate the config",
        description="Create, check, list and migrate the config.",
    )
    actions = config.add_subparsers(
        dest="config_command", metavar="ACTION", parser_class=parser_class
    )
    init = actions.add_parser("init", help="write a commented starter config")
    init.add_argument("--path", metavar="P", help="where to write it (default: the config path)")
    init.add_argument(
        "--pdb-dir", dest="init_pdb_dir", metavar="D", help="mirror root to write into it"
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--minimal", action="store_true", help="one target, no extras")
    init.set_defaults(handler=_cmd_config_init)
    validate = actions.add_parser("validate", help="report every problem of the config")
    validate.add_argument("--json", action="store_true", help="print the result as JSON")
    validate.set_defaults(handler=_cmd_config_validate)
    listing = actions.add_parser("list", help="targets with url, dest and preset")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(handler=_cmd_config_list)
    presets = actions.add_parser("presets", help="the presets and what each sets")
    presets.add_argument("--format", choices=("text", "json"), default="text")
    presets.set_defaults(handler=_cmd_config_presets)
    migrate = actions.add_parser("migrate", help="rewrite legacy rsync_* keys (keeps comments)")
    migrate.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    migrate.set_defaults(handler=_cmd_config_migrate)
    show = actions.add_parser("show", help="a target's resolved options and their layers")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(handler=_cmd_config_show)
    config.set_defaults(handler=_cmd_config_help, config_parser=config)


def _cmd_config_help(args: argparse.Namespace, env: Environment) -> int:
    args.config_parser.print_help(env.stderr)
    return ExitCode.USAGE


def _write(env: Environment, text: str) -> None:
    env.stdout.write(text.encode())
    env.stdout.flush()


def _config_path(args: argparse.Namespace, env: Environment) -> Path:
    from pdbsync.config.load import find_config

    return find_config(args.config, env.environ)


def _cmd_config_init(args: argparse.Namespace, env: Environment) -> int:
    from pdbsync.config.edit import init_config

    path = Path(args.path).expanduser() if args.path else _config_path(args, env)
    pdb_dir = args.init_pdb_dir or args.pdb_dir or env.environ.get("PDB_SYNC_DIR") or "/data/pdb"
    # In the config a relative pdb_dir means "beside the config"; the user meant "here".
    pdb_dir = os.path.abspath(os.path.expanduser(pdb_dir))
    init_config(path, pdb_dir, force=args.force, minimal=args.minimal)
    _write(env, f"Wrote {path}; check it with 'pdb-sync config validate'\n")
    return ExitCode.OK


def _cmd_config_validate(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync.config.load import check_file

    path = _config_path(args, env)
    result = check_file(path, env.environ)
    problems = result.problems
    warnings = list(result.config.warnings) if result.config else []  # Rust-only keys
    notes = []
    if result.config is not None:
        note = _pdb_dir_note(result.config, env)
        if note is not None:
            usable, line = note
            (notes if usable else problems).append(f"{path}: {line}")
    if args.json:
        result = {
            "config": str(path),
            "valid": not problems,
            "problems": problems,
            "warnings": warnings,
            "notes": notes,
        }
        env.stdout.write(orjson.dumps(result) + b"\n")
        env.stdout.flush()
        return ExitCode.USAGE if problems else ExitCode.OK
    env.stderr.write("".join(f"pdb-sync: warning: {w}\n" for w in warnings))
    env.stderr.flush()
    if problems:
        env.stderr.write("".join(f"pdb-sync: error: {p}\n" for p in problems))
        env.stderr.flush()
    else:
        _write(env, "".join(f"{note}\n" for note in notes) + f"{path}: OK\n")
    return ExitCode.USAGE if problems else ExitCode.OK


def _pdb_dir_note(config: Config, env: Environment) -> tuple[bool, str] | None:
    """What ``config validate`` says of the mirror root: nothing while it is a writable
    directory; that sync will create it (usable), or why it cannot be used (a problem),
    judged as ``env doctor`` judges it. None when neither the config nor PDB_SYNC_DIR
    names one (``sync --pdb-dir`` may)."""
    from pdbsync.config.load import resolve_pdb_dir
    from pdbsync.doctor import writable
    from pdbsync.errors import ConfigError

    try:
        pdb_dir = resolve_pdb_dir(config, None, env.environ)
    except ConfigError:
        return None
    usable, reason = writable(pdb_dir)
    if usable and pdb_dir.is_dir():
        return None
    key = "[paths] pdb_dir" if config.pdb_dir is not None else "PDB_SYNC_DIR"
    return usable, f"{key}: {reason}"


def _cmd_config_list(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync.config.load import find_config, load_config, target_rows

    rows = target_rows(load_config(find_config(args.config, env.environ)))
    if args.format == "json":
        env.stdout.write(orjson.dumps(rows) + b"\n")
        env.stdout.flush()
        return ExitCode.OK
    header = {"name": "NAME", "preset": "PRESET", "mirror": "MIRROR", "url": "URL", "dest": "DEST"}
    table = [header] + [
        {
            **row,
            "preset": row["preset"] or "-",
            "mirror": row["mirror"] or "-",
            "url": row["url"] or "(chosen at sync)",
        }
        for row in rows
    ]
    widths = {key: max(len(str(row[key])) for row in table) for key in header}
    lines = ["  ".join(f"{row[key]:<{widths[key]}}" for key in header).rstrip() for row in table]
    _write(env, "\n".join(lines) + "\n")
    return ExitCode.OK


def _cmd_config_presets(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync.config.options import PRESETS, SPECS

    if args.format == "json":
        env.stdout.write(orjson.dumps(PRESETS) + b"\n")
        env.stdout.flush()
        return ExitCode.OK
    width = max(len(name) for name in PRESETS)
    lines = []
    for name, values in PRESETS.items():
        flags = " ".join(SPECS[key].rsync or key for key in values) or "(nothing beyond -a)"
        keys = ", ".join(values) or "-"
        lines.append(f"{name:<{width}}  {keys:<50}  rsync: {flags}")
    _write(env, "\n".join(lines) + "\n")
    return ExitCode.OK


def _cmd_config_migrate(args: argparse.Namespace, env: Environment) -> int:
    from pdbsync.config.edit import migrate_config, unified_diff

    migration = migrate_config(_config_path(args, env), dry_run=args.dry_run)
    if not migration.changed:
        _write(
            env, f"{migration.path}: no legacy rsync_* keys and no Rust-only keys; nothing to do\n"
        )
    elif args.dry_run:
        _write(env, unified_diff(migration.path, migration.before, migration.after))
    else:
        notes = "".join(f"  {note}\n" for note in migration.changes)
        _write(env, f"Migrated {migration.path} (original kept as {migration.backup}):\n{notes}")
    return ExitCode.OK


def _cmd_config_show(args: argparse.Namespace, env: Environment) -> int:
    import orjson

    from pdbsync.config.load import (
        find_config,
        load_config,
        source_text,
        target_options,
        target_rows,
    )
    from pdbsync.config.options import describe
    from pdbsync.run.jobs import select_targets

    config = load_config(find_config(args.config, env.environ))
    (name,) = select_targets(config, [args.name], False)
    resolved = target_options(config, name)
    row = next(row for row in target_rows(config) if row["name"] == name)
    if args.format == "json":
        values = resolved.values()
        data = {"name": name, "options": values, "sources": {k: resolved.source(k) for k in values}}
        data.update(url=row["url"], mirror=row["mirror"], mirror_reason=row["mirror_reason"])
        env.stdout.write(orjson.dumps(data) + b"\n")
        env.stdout.flush()
    else:
        source = f"source: {source_text(row)}\n"
        _write(env, source + "".join(f"{line}\n" for line in describe(resolved)))
    return ExitCode.OK
