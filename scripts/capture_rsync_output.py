"""Capture real rsync output from the local daemon as parser test fixtures.

    python scripts/capture_rsync_output.py [OUTDIR]     # default: tests/fixtures/rsync

Generates a mini-PDB archive, serves it with a real ``rsync --daemon`` on 127.0.0.1 and
runs the installed rsync under several option combinations (plain, ``-h``, ``-hh``,
``-z``, a second run that changes nothing, ``--delete`` with deletions, and the same
as a ``--dry-run --itemize-changes`` plan). Each run's raw stdout (``\\r`` redraws
included) goes to ``NAME.out``; ``manifest.json`` records the flags, the rsync version
and what the file system says the numbers must be (counted from the trees, not parsed
from rsync), so the tests can check the parser against facts rather than against
itself. Re-run it after an rsync upgrade and commit the result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_mirror import LocalMirror
from mini_pdb import generate

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "rsync"


def _tree(root: Path) -> dict[str, int]:
    """Regular files, directories (the root included, as rsync counts it) and bytes."""
    files = [p for p in root.rglob("*") if p.is_file()]
    dirs = [p for p in root.rglob("*") if p.is_dir()]
    return {
        "files": len(files),
        "dirs": len(dirs) + 1,
        "bytes": sum(p.stat().st_size for p in files),
    }


def _change(dest: Path) -> dict[str, int]:
    """Make ``dest`` differ from the archive: some files missing, some changed, extras."""
    cifs = sorted(dest.rglob("*.cif.gz"))
    for path in cifs[:5]:
        path.unlink()
    for path in cifs[5:7]:
        path.write_bytes(path.read_bytes() + b"local change\n")
    extra = dest / "obsolete" / "old"
    extra.mkdir(parents=True)
    for number in range(3):
        (extra / f"gone{number}.cif.gz").write_bytes(b"x" * 100)
    # 5 files to create, 2 to update; 3 files and 2 directories to delete
    return {"to_create": 5, "to_update": 2, "to_delete": 5}


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    rsync = shutil.which("rsync")
    if rsync is None:
        sys.exit("rsync is not installed")
    version = subprocess.run([rsync, "--version"], capture_output=True, text=True).stdout
    env = dict(os.environ, LC_NUMERIC="C")
    manifest: dict[str, object] = {"rsync_version": version.splitlines()[0], "runs": {}}
    with tempfile.TemporaryDirectory() as work:
        work_path = Path(work)
        archive = work_path / "archive"
        generate(archive, entries=150, atoms=300)
        source = _tree(archive)
        manifest["source"] = source
        with LocalMirror(archive, work_path / "daemon") as mirror:
            url = mirror.url("ftp_data", "")

            def run(name: str, flags: list[str], dest: Path, facts: dict[str, int]) -> None:
                argv = [rsync, *flags, "--", url, f"{dest}/"]
                proc = subprocess.run(argv, capture_output=True, env=env, check=True)
                (out / f"{name}.out").write_bytes(proc.stdout)
                manifest["runs"][name] = {"flags": flags, "expect": facts}  # type: ignore[index]
                print(f"{name}: {' '.join(flags)}")

            everything = {
                "files_total": source["files"] + source["dirs"],
                "files_transferred": source["files"],
                "files_created": source["files"] + source["dirs"],
                "total_size": source["bytes"],
                "transferred_size": source["bytes"],
            }
            progress = ["-a", "--info=progress2", "--stats"]
            run("plain", progress, work_path / "plain", everything)
            run("human", ["-a", "-h", "--stats"], work_path / "human", everything)
            run("human2", ["-a", "-hh", "--stats"], work_path / "human2", everything)
            run("compress", ["-a", "-z", "--stats"], work_path / "compress", everything)
            nothing = {
                "files_total": source["files"] + source["dirs"],
                "files_transferred": 0,
                "files_created": 0,
                "total_size": source["bytes"],
                "transferred_size": 0,
            }
            run("nochange", progress, work_path / "plain", nothing)
            changed = _change(work_path / "plain")
            deletion = {
                "files_total": source["files"] + source["dirs"],
                "files_transferred": changed["to_create"] + changed["to_update"],
                "files_created": changed["to_create"],
                "files_deleted": changed["to_delete"],
                "total_size": source["bytes"],
                **changed,
            }
            plan = ["-a", "--delete", "--dry-run", "--itemize-changes", "--stats"]
            run("plan_delete", plan, work_path / "plain", deletion)
            real = ["-a", "--delete", "--itemize-changes", "--stats"]
            run("delete", real, work_path / "plain", deletion)
            _change(work_path / "human")
            run("delete_human", ["-a", "-h", "--delete", "--stats"], work_path / "human", deletion)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(manifest['runs'])} fixtures to {out}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
