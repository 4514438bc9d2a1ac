"""The demo: a generated mini-PDB, served by a local rsync daemon, synced by pdb-sync.

    python scripts/demo.py [--workdir demo-run] [--entries 200] [--no-weekly] [-- extra sync args]

Leaves the synced tree, the config, summary.json and report.html (the run as an HTML
page) in the work directory so you can
look at them, and runs the real ``pdb-sync`` command (as a user would). Then a weekly
update (docs/weekly.md): a second archive with the wwPDB status lists, a target with
``update_mode = "weekly"``, its first run (a full sync, saying why), one weekly
release of the archive, and the run that applies only that week (``weekly.toml``,
``weekly-summary.json``; its state in ``state/``).

The work directory is the demo's only when the demo made it: a new or empty directory
gets a marker file, and a later run removes only the demo's own entries from a marked
one (anything else in it is left alone). A non-empty directory without the marker is
refused, so ``--workdir ~/data`` can never cost you a file.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_mirror import LocalMirror
from mini_pdb import advance_week, generate, generate_weekly

TARGETS = {
    "mmcif": ("structures/divided/mmCIF/", "structures/divided/mmCIF", "Divided mmCIF entries"),
    "pdb": ("structures/divided/pdb/", "structures/divided/pdb", "Legacy PDB-format entries"),
    "assemblies": (
        "assemblies/mmCIF/divided/",
        "assemblies/mmCIF/divided",
        "Biological assemblies",
    ),
    "sifts": ("sifts/", "sifts", "SIFTS residue mappings"),
}


#: Marks a work directory the demo made; only such a directory is ever cleaned.
MARKER = ".pdb-sync-demo"
#: What the demo puts in its work directory: all it removes before a new run.
OWN_ENTRIES = (
    "archive",
    "mirror",
    "pdb",
    "config.toml",
    "summary.json",
    "report.html",
    "weekly-archive",
    "weekly.toml",
    "weekly-summary.json",
    "state",
)
#: Exit status when the work directory is not the demo's to use (as pdb-sync's usage errors).
REFUSED = 2


class WorkdirRefused(Exception):
    """The work directory holds something the demo did not make."""


def prepare_workdir(work: Path) -> None:
    """Make ``work`` ready for a fresh demo run without touching anything not the demo's.

    A missing or empty directory is created and marked; a marked one loses the demo's
    own entries (OWN_ENTRIES) and keeps everything else; any other non-empty directory,
    or a path that is not a directory, raises WorkdirRefused.
    """
    if work.exists() and not work.is_dir():
        raise WorkdirRefused(f"--workdir {work}: not a directory")
    marker = work / MARKER
    if work.is_dir() and not marker.is_file() and any(work.iterdir()):
        raise WorkdirRefused(
            f"--workdir {work}: not empty and not made by the demo (no {MARKER} file); "
            "pass a new or empty directory"
        )
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text("Made by scripts/demo.py, which may clean its own entries here.\n")
    for name in OWN_ENTRIES:
        entry = work / name
        if entry.is_symlink() or entry.is_file():
            entry.unlink()  # a symlink goes, never what it points to
        elif entry.is_dir():
            shutil.rmtree(entry)


def write_demo_config(path: Path, mirror: LocalMirror, pdb_dir: Path) -> None:
    lines = [
        "# Written by scripts/demo.py: four targets on the local mirror.",
        "[paths]",
        f'pdb_dir = "{pdb_dir}"',
        "",
    ]
    for name, (source, dest, description) in TARGETS.items():
        lines += [
            f"[sync.custom.{name}]",
            f'url = "{mirror.url("ftp_data", source)}"',
            f'dest = "{dest}"',
            f'description = "{description}"',
            "",
        ]
    path.write_text("\n".join(lines))


def weekly_demo(work: Path, mirror: LocalMirror, entries: int) -> int:
    """A weekly target's first run (full, and why) and its next, after one weekly
    release: only that week's entries are transferred. Returns the last exit code."""
    import os

    ids = generate_weekly(work / "weekly-archive", max(entries // 4, 8))
    print(f"\ndemo: weekly archive of {len(ids)} entries with status lists, module 'weekly'")
    config = work / "weekly.toml"
    config.write_text(
        "# Written by scripts/demo.py: a target updated from the wwPDB status lists.\n"
        f'[paths]\npdb_dir = "{work / "pdb"}"\n\n'
        "[sync.custom.mmcif-weekly]\n"
        f'url = "{mirror.url("weekly", "structures/divided/mmCIF/")}"\n'
        'dest = "weekly/mmCIF"\nupdate_mode = "weekly"\n'
        "[sync.custom.mmcif-weekly.options]\ndelete = true\n"
    )
    env = {**os.environ, "PDB_SYNC_STATE_DIR": str(work / "state")}
    command = ["pdb-sync", "--config", str(config), "sync", "--summary"]
    code = 0
    for step in ("first", "weekly"):
        if step == "weekly":
            week = advance_week(work / "weekly-archive", added=4, modified=3, obsolete=2)
            print(
                f"\ndemo: weekly release {week['week'][0]}: added {week['added']}, "
                f"modified {week['modified']}, obsolete {week['obsolete']}"
            )
        argv = [*command, str(work / "weekly-summary.json")]
        print(f"demo: $ {shlex.join(argv)}\n", flush=True)
        code = subprocess.call(argv, env=env)
        if code != 0:
            return code
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("demo-run"))
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument(
        "--no-weekly", action="store_true", help="skip the weekly update part of the demo"
    )
    parser.add_argument("sync_args", nargs="*", help="extra arguments for 'pdb-sync sync'")
    args = parser.parse_args()
    work = args.workdir.resolve()
    try:
        prepare_workdir(work)
    except WorkdirRefused as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return REFUSED
    files = generate(work / "archive", entries=args.entries)
    print(f"demo: generated {len(files)} files of a mini-PDB under {work / 'archive'}")
    (work / "weekly-archive").mkdir()
    served = LocalMirror(work / "archive", work / "mirror")
    served.add_module("weekly", work / "weekly-archive")
    with served as mirror:
        print(f"demo: rsync daemon serving it at {mirror.url()}")
        config = work / "config.toml"
        write_demo_config(config, mirror, work / "pdb")
        command = [
            "pdb-sync",
            "--config",
            str(config),
            "sync",
            "--all",
            "--parallel",
            "3",
            "--summary",
            str(work / "summary.json"),
            "--report",
            str(work / "report.html"),
            *args.sync_args,
        ]
        print(f"demo: $ {shlex.join(command)}\n", flush=True)
        code = subprocess.call(command)
        if code == 0 and not args.no_weekly:
            code = weekly_demo(work, mirror, args.entries)
    print(
        f"\ndemo: exit code {code}; mirror in {work / 'pdb'}, summary in "
        f"{work / 'summary.json'}, report in {work / 'report.html'}"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
