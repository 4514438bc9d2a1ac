"""The demo: a generated mini-PDB, served by a local rsync daemon, synced by pdb-sync.

    python scripts/demo.py [--workdir demo-run] [--entries 200] [-- extra sync args]

Leaves the synced tree, the config and summary.json in the work directory so you can
look at them, and runs the real ``pdb-sync`` command (as a user would).
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
from mini_pdb import generate

TARGETS = {
    "mmcif": ("structures/divided/mmCIF/", "structures/divided/mmCIF", "Divided mmCIF entries"),
    "pdb": ("structures/divided/pdb/", "structures/divided/pdb", "Legacy PDB-format entries"),
    "assemblies": (
        "structures/assemblies/mmCIF/",
        "structures/assemblies/mmCIF",
        "Biological assemblies",
    ),
    "sifts": ("sifts/", "sifts", "SIFTS residue mappings"),
}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("demo-run"))
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("sync_args", nargs="*", help="extra arguments for 'pdb-sync sync'")
    args = parser.parse_args()
    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    files = generate(work / "archive", entries=args.entries)
    print(f"demo: generated {len(files)} files of a mini-PDB under {work / 'archive'}")
    with LocalMirror(work / "archive", work / "mirror") as mirror:
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
            *args.sync_args,
        ]
        print(f"demo: $ {shlex.join(command)}\n", flush=True)
        code = subprocess.call(command)
    print(f"\ndemo: exit code {code}; mirror in {work / 'pdb'}, summary in {work / 'summary.json'}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
