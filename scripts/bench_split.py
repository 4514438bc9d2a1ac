"""Benchmark split transfers and longest-first scheduling (issue 11), side by side.

    python scripts/bench_split.py [--mb 160] [--five-mb 60] [--rate 2048] [--repeat 3]
                                  [--workdir DIR]

A local rsync daemon on 127.0.0.1 (scripts/local_mirror.py) serves generated trees with a
per-connection ``--bwlimit`` (``--rate`` KiB/s): what a public mirror gives one stream,
so the race is decided by how many streams carry the bytes, not by this machine's disk.
Copies land in /dev/shm where it exists, into an empty destination each time; the
variants of a comparison are interleaved, repeat after repeat, and medians reported.

1. One big tree (``--mb`` MB in ~200 two-character directories), 4 streams: one rsync;
   ``pdb-sync --split 4 --parallel 4``; ``mprsync -j 4`` (PyPI; it uses --files-from,
   so it gets a ``use chroot = yes`` module, and ``--chunk-size`` of 1/64 of the tree);
   GNU ``parallel -j 4`` over 4 groups of
   directories (round-robin by name, as a shell user would split them). Goal: pdb-sync
   at least 3.9x one rsync, and no slower than mprsync.
2. Five targets of very different sizes (50/20/15/10/5 % of ``--five-mb``), 5 streams:
   GNU ``parallel -j 5`` over the targets vs ``pdb-sync --all --parallel 5`` with
   ``split = "auto"`` (``--max-per-host 5``: the default cap is 4). Goal: within 1.10x of
   total_bytes / (5 x rate).

pdb-sync runs with a state directory whose listing is warm (a first run made it); the
cold run's listing cost is measured and printed on its own.

Why 160 MB: a speedup against one rsync is bytes over fixed cost. Every tool here pays
~0.4-0.5 s that no stream carries (its own start, each rsync's connection and file
list, the slowest part's tail), so at 40 MB (19 s for one rsync) even mprsync reaches
only 3.7x of 4; the 3.9x goal needs one rsync to take ~80 s. Defaults take ~8.5
minutes on 2 cores; ``--mb 40`` shows the small-tree figures in ~3.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_mirror import LocalMirror

ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"
#: The five targets of comparison 2 and their share of the bytes.
SHARES = {"mmcif": 0.50, "pdb": 0.20, "assemblies": 0.15, "sifts": 0.10, "emdb": 0.05}


def make_tree(root: Path, total_bytes: int, seed: int, dirs: int = 200) -> None:
    """Files of 10-60 kB of random (incompressible) bytes in ``dirs`` hash directories."""
    rng = random.Random(seed)
    names = sorted({rng.choice(ALNUM) + rng.choice(ALNUM) for _ in range(dirs * 3)})[:dirs]
    written = 0
    number = 0
    while written < total_bytes:
        size = rng.randint(10_000, 60_000)
        path = root / rng.choice(names) / f"{number:06d}.cif.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        written += size
        number += 1


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def check(argv: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if result.returncode != 0:
        sys.exit(f"bench: {argv[0]} failed ({result.returncode}): {result.stderr[-500:]!r}")


def config_text(pdb_dir: Path, targets: dict[str, str], split: str | None) -> str:
    lines = ["[paths]", f'pdb_dir = "{pdb_dir}"', ""]
    for name, url in targets.items():
        lines += [f"[sync.custom.{name}]", f'url = "{url}"', f'dest = "{name}"']
        if split is not None:
            lines.append(f"split = {split}")
        lines.append("")
    return "\n".join(lines)


def python_tool(name: str) -> str:
    """A console script of this Python (pdb-sync, mprsync) by its real path: a wrapper
    on PATH (a pyenv shim costs ~65 ms a start, measured) would tax one side only."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else shutil.which(name) or name


def groups_parallel(urls: list[str], dest: Path, jobs: int, scratch: Path) -> list[str]:
    """GNU parallel over ``jobs`` files of source urls, one ``rsync -a URLS DEST/`` each."""
    files = []
    for index in range(jobs):
        path = scratch / f"group{index}"
        path.write_text("\n".join(urls[index::jobs]) + "\n")
        files.append(str(path))
    command = f"xargs -d '\\n' -a {{}} sh -c 'exec rsync -a \"$@\" {dest}/' _"
    return ["parallel", "-j", str(jobs), "--halt", "now,fail=1", command, ":::", *files]


def median_table(title: str, times: dict[str, list[float]], base: str, ideal: float) -> None:
    print(f"\n== {title} ==")
    reference = statistics.median(times[base])
    print(f"{'variant':<34} {'median s':>9} {'vs ' + base:>18} {'vs ideal':>9}  runs")
    for name, values in times.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:.2f}" for v in values)
        print(
            f"{name:<34} {median:>9.2f} {reference / median:>17.2f}x "
            f"{median / ideal:>8.2f}x  {runs}"
        )
    print(f"{'ideal (bytes / streams x rate)':<34} {ideal:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=160, help="MB of the big tree")
    parser.add_argument("--five-mb", type=float, default=60, help="MB of the five targets")
    parser.add_argument("--rate", type=int, default=2048, help="KiB/s per connection")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    for tool in ("rsync", "parallel", python_tool("mprsync")):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} missing (apt-get install rsync parallel; pip install mprsync)")
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
    work = args.workdir or base / "pdb-sync-bench-split"
    fresh(work)
    rate = args.rate * 1024
    big = work / "big"
    make_tree(big, int(args.mb * 1e6), seed=1)
    five = work / "five"
    total_five = int(args.five_mb * 1e6)
    for index, (name, share) in enumerate(SHARES.items()):
        make_tree(five / name, int(total_five * share), seed=10 + index, dirs=60 + 40 * index)
    big_bytes = sum(p.stat().st_size for p in big.rglob("*") if p.is_file())
    five_bytes = sum(p.stat().st_size for p in five.rglob("*") if p.is_file())

    mirror = LocalMirror(big, work / "daemon", daemon_args=(f"--bwlimit={args.rate}",))
    mirror.add_module("big_chroot", big, **{"use chroot": "yes"})
    mirror.add_module("five", five)
    env = dict(os.environ, PDB_SYNC_STATE_DIR=str(work / "state"))
    exe = python_tool("pdb-sync")
    mprsync = python_tool("mprsync")
    with mirror:
        url = mirror.url("ftp_data", "")
        dest = work / "dest"
        big_config = work / "big.toml"
        big_config.write_text(config_text(dest, {"big": url}, split=None))
        dirs = sorted(p.name for p in big.iterdir())
        dir_urls = [mirror.url("ftp_data", name) for name in dirs]

        chunk = max(1, big_bytes // 64)  # mprsync's default (8 MB) would make one chunk
        listing = timed(lambda: check(["rsync", "--list-only", "-r", url]))
        cold = timed(
            lambda: check(
                [exe, "--config", str(big_config), "sync", "big", "--split", "4",
                 "--parallel", "4"],
                env,
            )
        )  # fmt: skip
        variants: dict[str, Callable[[Path], None]] = {
            "one rsync": lambda d: check(["rsync", "-a", url, f"{d}/"]),
            "pdb-sync --split 4 --parallel 4": lambda d: check(
                [
                    exe,
                    "--config",
                    str(big_config),
                    "--pdb-dir",
                    str(d),
                    "sync",
                    "big",
                    "--split",
                    "4",
                    "--parallel",
                    "4",
                ],
                env,
            ),
            "mprsync -j 4 (chroot module)": lambda d: check(
                [
                    mprsync,
                    "-j",
                    "4",
                    "--silent",
                    f"--chunk-size={chunk}",
                    "-a",
                    mirror.url("big_chroot", ""),
                    f"{d}/",
                ]
            ),
            "GNU parallel -j 4, 4 dir groups": lambda d: check(
                groups_parallel(dir_urls, d / "big", 4, work)
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, run in variants.items():
                target = fresh(dest)
                if name.startswith("GNU"):
                    (target / "big").mkdir()
                times[name].append(timed(lambda run=run, target=target: run(target)))
        median_table(
            f"1. one big tree: {big_bytes / 1e6:.1f} MB in {len(dirs)} directories, "
            f"{args.rate} KiB/s per connection, 4 streams",
            times,
            "one rsync",
            big_bytes / (4 * rate),
        )
        print(
            f"listing (rsync --list-only -r) {listing:.2f}s; pdb-sync's first run "
            f"(listing included, no state) {cold:.2f}s"
        )

        five_urls = {name: mirror.url("five", f"{name}/") for name in SHARES}
        five_config = work / "five.toml"
        five_config.write_text(config_text(dest, five_urls, split='"auto"'))
        check(
            [
                exe,
                "--config",
                str(five_config),
                "sync",
                "--all",
                "--plan",
                "--parallel",
                "5",
                "--max-per-host",
                "5",
            ],
            env,
        )  # fmt: skip  (warms the listings)
        lines = "\n".join(f"{url} {name}" for name, url in five_urls.items())
        variants = {
            "GNU parallel -j 5 over targets": lambda d: subprocess.run(
                ["parallel", "-j", "5", "--colsep", " ", "rsync", "-a", "{1}", f"{d}/{{2}}/"],
                input=lines.encode(),
                check=True,
                stdout=subprocess.DEVNULL,
            ),
            "pdb-sync --all --parallel 5 (auto)": lambda d: check(
                [
                    exe,
                    "--config",
                    str(five_config),
                    "--pdb-dir",
                    str(d),
                    "sync",
                    "--all",
                    "--parallel",
                    "5",
                    "--max-per-host",
                    "5",
                ],
                env,
            ),
        }
        times = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, run in variants.items():
                target = fresh(dest)
                times[name].append(timed(lambda run=run, target=target: run(target)))
        median_table(
            f"2. five targets, {five_bytes / 1e6:.1f} MB (50/20/15/10/5 %), 5 streams",
            times,
            "GNU parallel -j 5 over targets",
            five_bytes / (5 * rate),
        )


if __name__ == "__main__":
    main()
