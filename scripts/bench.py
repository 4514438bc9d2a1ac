"""Benchmark pdb-sync against plain rsync and GNU parallel, side by side in one run.

    python scripts/bench.py [--entries 13000] [--parallel 2] [--repeat 3] [--workdir bench-run]
    python scripts/bench.py --pdb-scale-only --repeat 5     # issue 25's rows only
    python scripts/bench.py --weekly-only --repeat 5        # issue 23's weekly-update row
    python scripts/bench.py --baseline ../before --repeat 9  # this tree against another

Everything talks to local rsync daemons on 127.0.0.1 (scripts/local_mirror.py) serving
a generated mini-PDB (scripts/mini_pdb.py): for the parallel comparison one that limits
each transfer's bandwidth (``--bwlimit``), as a distant mirror does, so that transfers
last seconds and rsync's own disk and CPU use do not decide the race; for the verbose
comparison an unlimited one, so the output pipeline is pushed as hard as rsync can.
Copies land in /dev/shm where it exists. Each measurement copies into an empty
destination, and the variants of one comparison are interleaved, repeat after repeat,
so drift on the machine hits them alike; the median of the repeats is reported.

Each variant is reported with its wall time and the CPU time (user + system) of the
processes it ran, each a median and a ratio to the row's reference. The targets are for
wall time; the CPU ratio shows all of what pdb-sync's own processes cost, part of
which wall time hides while rsync keeps the cores busy.

Printed ratios, with the targets they are held to:
- parallel sync: pdb-sync --parallel N vs GNU ``parallel -j N --tag rsync``
  (target: within 5%), and vs plain sequential rsync;
- verbose output (``-v --itemize-changes``, one line per file): rsync > /dev/null vs
  pdb-sync text and json to /dev/null (target: overhead under 25%);
- ``pdb-sync --version`` start-up (target: under 150 ms);
- the fixed cost of a run (4 targets already up to date) and a fresh copy of 4 targets
  of small files, ``--parallel 4``, vs GNU parallel (targets: no slower; within 5%);
  each with two runs of scripts/pool_floor.py beside it: the design's shape (pool,
  queue, JSON events) running the same rsyncs and nothing else, plain and after importing
  the pdbsync modules a sync imports (the floor under pdb-sync, and what its code's
  import adds to it);
- PDB scale (issue 25; ``--pdb-entries``, ``--pdb-scale-only``): a 250,000-file divided
  mmCIF tree on tmpfs, fresh copy and up-to-date re-sync vs ``rsync -a`` (target: within
  x1.05), verbose json vs ``rsync -a -v --itemize-changes`` (within x1.10), each also vs
  rsync with pdb-sync's exact flags; the re-sync cost of each preset and of the old
  ``--partial-dir`` default; peak RSS of pdb-sync's own processes (under 150 MB);
- weekly updates (issue 23; ``--weekly-only``, ``--weekly-changes``): the same 250,000-file
  tree on tmpfs, one up-to-date copy a week behind, and a release of ~1,000 changed
  entries applied by a weekly target vs a full re-sync of the same target vs ``rsync -a
  --delete``, with the files each rsync listed (targets: under 5% of the full list; x3
  faster than the full re-sync on tmpfs);
- ``config validate`` of 1,000 to 20,000 targets (the dest overlap check);
- SIGTERM to exit, summary written, with four transfers under way (well under Slurm's
  KillWait; the bound tests/test_lifecycle.py no longer asserts).
- ``--baseline DIR``: this checkout against another one (say, main before a refactor),
  each run with ``PYTHONPATH`` set to its tree and interleaved run by run:
  ``pdb-sync --version``, the re-sync of 4 small targets already up to date and, with
  ``--pdb-entries``, the PDB-scale re-sync; medians, spread and the load average
  (target: no slower beyond the noise).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_mirror import LocalMirror
from mini_pdb import FIRST_WEEK, advance_divided, generate, generate_divided

TARGETS = {
    "mmcif": "structures/divided/mmCIF/",
    "pdb": "structures/divided/pdb/",
    "assemblies": "assemblies/mmCIF/divided/",
    "sifts": "sifts/",
}
#: What pdb-sync gives rsync by default, so both sides of a comparison run the same rsync.
#: Checked against pdbsync.prepare() at start, so the two cannot drift apart.
RSYNC_FLAGS = ["-a", "--info=progress2", "--stats"]
#: The least a Python parent adds to an rsync: start, spawn it, read its pipe to the end.
PIPE_READER = (
    "import subprocess, sys\n"
    "with subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE) as p:\n"
    "    for _ in p.stdout: pass\n"
    "sys.exit(p.returncode)"
)
#: What it gave rsync before issue 25 (partial on by default): rsync then looks for a
#: partial file beside every file it examines.
OLD_DEFAULT_FLAGS = ["-a", "--partial-dir=.rsync-partial", "--info=progress2", "--stats"]


def pdb_sync_exe() -> str:
    """The installed console script, resolved past shims (a pyenv shim costs ~50 ms)."""
    candidate = Path(sys.executable).with_name("pdb-sync")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("pdb-sync")
    if found is None:
        sys.exit("bench: pdb-sync is not installed; run 'pip install -e .'")
    return found


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def write_config(
    path: Path, mirror: LocalMirror, pdb_dir: Path, verbose: bool = False, bwlimit: int = 0
) -> Path:
    lines = ["[paths]", f'pdb_dir = "{pdb_dir}"', ""]
    names = ["everything"] if verbose else list(TARGETS)
    for name in names:
        source = "" if verbose else TARGETS[name]
        lines += [
            f"[sync.custom.{name}]",
            f'url = "{mirror.url("ftp_data", source)}"',
            f'dest = "{name}"',
        ]
        if verbose:
            lines += [f"[sync.custom.{name}.options]", "verbose = true", "itemize_changes = true"]
            if bwlimit:
                lines.append(f"bwlimit = {bwlimit}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def compiled_like_an_install(work: Path) -> None:
    """Every Python this benchmark starts (pdb-sync, the floors) reads its modules'
    bytecode from one cache under ``work``, as an installed copy does (pip compiles at
    install). With ``PYTHONDONTWRITEBYTECODE=1`` in the environment, as on some CI and
    sandbox machines, every run compiled every module again: ~0.1 s of CPU that no user
    pays (docs/benchmarks.md)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")


def installed_copy(work: Path) -> str | None:
    """``pdb-sync`` as a user gets it: this checkout installed (not editable) into a fresh
    venv under ``work``, which sees no other site-packages (so no ``.pth`` file of the
    machine's Python runs at start-up). None, with a note, where that cannot be built."""
    here = Path(__file__).resolve().parent.parent
    venv = work / "venv-installed"
    shutil.rmtree(venv, ignore_errors=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
    python = venv / "bin" / "python"
    if made.returncode == 0:
        made = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", str(here)], capture_output=True
        )
    if made.returncode != 0:
        print(f"bench: no installed-copy row (venv or pip failed): {made.stderr[-300:]!r}")
        return None
    return str(venv / "bin" / "pdb-sync")


def pdb_sync_argv(config: Path, **overrides: object) -> list[str]:
    """The rsync command pdb-sync runs for the first target of ``config``."""
    import pdbsync

    return list(pdbsync.prepare(config, overrides=overrides)[0].argv)


def flags_of(argv: list[str]) -> list[str]:
    """The options of an rsync command line (between the program and ``--``)."""
    return argv[1 : argv.index("--")]


def run(argv: list[str]) -> None:
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0:
        sys.exit(f"bench: {argv} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")


@dataclass(frozen=True)
class Timing:
    """Medians of one variant: wall seconds, and CPU seconds (user + system) of the
    processes it ran, without the daemon's side of a transfer (the same for every
    variant). Where rsync keeps the cores busy, wall time hides part of what pdb-sync's
    own processes cost; the CPU figure shows all of it."""

    wall: float
    cpu: float


def children_cpu() -> float:
    """CPU seconds of every reaped descendant so far (rsync's children are reaped by
    rsync, pdb-sync's workers by pdb-sync: all of it reaches this process)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def samples(
    variants: dict[str, Callable[[], object]],
    repeat: int,
    setup: Callable[[], object] | None = None,
    check: Callable[[str], object] | None = None,
) -> dict[str, tuple[list[float], list[float]]]:
    """Every variant ``repeat`` times, interleaved: its wall and CPU seconds, run by run.
    ``setup`` runs before each run and ``check(name)`` after it, neither timed."""
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, variant in variants.items():
            if setup is not None:
                setup()
            before = children_cpu()
            walls[name].append(timed(variant))
            cpus[name].append(children_cpu() - before)
            if check is not None:
                check(name)
    return {name: (walls[name], cpus[name]) for name in variants}


def measure(
    variants: dict[str, Callable[[], object]],
    repeat: int,
    setup: Callable[[], object] | None = None,
    check: Callable[[str], object] | None = None,
) -> dict[str, Timing]:
    return {
        name: Timing(statistics.median(walls), statistics.median(cpus))
        for name, (walls, cpus) in samples(variants, repeat, setup, check).items()
    }


def report(title: str, medians: dict[str, Timing], baseline: str, target: str) -> None:
    print(f"\n{title}")
    base = medians[baseline]
    for name, timing in medians.items():
        print(
            f"  {name:<34} {timing.wall:8.3f} s  x{timing.wall / base.wall:5.3f}"
            f"   cpu {timing.cpu:7.3f} s  x{timing.cpu / base.cpu:5.3f}"
        )
    print(f"  ratios: of {baseline}; target (wall time): {target}")


def job_lines(sources: dict[str, str], out: Path) -> bytes:
    """``URL DEST`` per target, one per line: what GNU parallel and the floor both read,
    so that every variant of a row runs the very same rsyncs."""
    return "\n".join(f"{url} {out / name}/" for name, url in sources.items()).encode()


def gnu_parallel_jobs(sources: dict[str, str], out: Path, jobs: int) -> Callable[[], None]:
    """GNU ``parallel -j N --tag rsync ...`` over the targets, as a reference."""

    def go() -> None:
        subprocess.run(
            ["parallel", "-j", str(jobs), "--tag", "--colsep", " ", "rsync", *RSYNC_FLAGS,
             "{1}", "{2}"],
            input=job_lines(sources, out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )  # fmt: skip

    return go


def pool_floor_jobs(
    sources: dict[str, str], out: Path, jobs: int, preload: Sequence[str] = ()
) -> Callable[[], None]:
    """scripts/pool_floor.py over the targets: the fixed design (pool, queue, JSON events)
    doing nothing but run the same rsyncs; how much of a gap is the design's own. With
    ``preload``, it first imports those modules, as pdb-sync does before its pool forks."""
    floor = str(Path(__file__).resolve().with_name("pool_floor.py"))
    options = ["--preload", ",".join(preload)] if preload else []

    def go() -> None:
        subprocess.run(
            [sys.executable, floor, *options, str(jobs), *RSYNC_FLAGS],
            input=job_lines(sources, out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )

    return go


def imported_by(argv: list[str]) -> list[str]:
    """The pdbsync modules a run of ``python -m pdbsync ARGV`` imports (-X importtime)."""
    found = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pdbsync", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    ).stderr
    names = (line.rsplit("|", 1)[-1].strip() for line in found.splitlines() if "|" in line)
    # pdbsync.__main__ runs the CLI when imported; -m runs it as __main__, never lists it.
    ours = {name for name in names if name.split(".")[0] == "pdbsync"}
    return sorted(ours - {"pdbsync.__main__"})


def startup_archive(args: argparse.Namespace, work: Path) -> Path:
    """The small-file archive of the start-up and baseline rows (4 targets of
    ``--startup-entries`` entries), made again only when its size changed."""
    archive = work / "archive-startup"
    marker = archive / f".entries-{args.startup_entries}"
    if not marker.exists():
        shutil.rmtree(archive, ignore_errors=True)
        files = generate(archive, entries=args.startup_entries, atoms=args.atoms)
        marker.touch()
        print(f"bench: generated {len(files):,} files for the start-up rows")
    return archive


def pdb_scale_archive(args: argparse.Namespace, work: Path) -> Path:
    """The ``--pdb-entries`` divided-mmCIF tree, on tmpfs when there is one, generated once
    and kept for the next run (it takes long to make)."""
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    archive = shm / f"pdb-sync-bench-pdb-{args.pdb_entries}"
    marker = archive / ".complete"
    if not marker.exists():
        shutil.rmtree(archive, ignore_errors=True)
        count = generate_divided(archive, args.pdb_entries, atoms=args.atoms)
        marker.touch()
        print(f"bench: generated {count:,} files in {archive} (kept for the next run)")
    return archive


def startup_rows(args: argparse.Namespace, exe: str, work: Path, out: Path) -> None:
    """Issue 10's rows: the fixed cost of a run (4 targets already up to date) and a
    fresh copy of 4 targets of small files with --parallel 4 (CPU-bound on 2 cores), each
    against GNU parallel running the same rsyncs, on an unlimited local daemon."""
    archive = startup_archive(args, work)
    copy = out / "startup"
    with LocalMirror(archive, work / "mirror-startup") as mirror:
        config = write_config(work / "startup.toml", mirror, copy)
        sources = {name: mirror.url("ftp_data", path) for name, path in TARGETS.items()}
        pdb_sync = [exe, "--config", str(config), "sync", "--all", "--parallel", "4"]
        run(pdb_sync)  # a warm state directory, as every run after the first has
        parallel4 = gnu_parallel_jobs(sources, copy, 4)
        floor4 = pool_floor_jobs(sources, copy, 4)
        ours = imported_by(pdb_sync[1:])
        floor4_ours = pool_floor_jobs(sources, copy, 4, preload=ours)
        medians = measure(
            {
                "GNU parallel -j 4 --tag": parallel4,
                "pool + queue floor, 4 workers": floor4,
                f"floor importing pdbsync ({len(ours)} mods)": floor4_ours,
                "pdb-sync --parallel 4": lambda: run(pdb_sync),
            },
            args.repeat,
        )
        report(
            "Re-sync of 4 targets already up to date (the fixed cost of a run)",
            medians,
            "GNU parallel -j 4 --tag",
            "pdb-sync no slower than GNU parallel",
        )

        def into_empty_copy(variant: Callable[[], object]) -> Callable[[], None]:
            def go() -> None:
                fresh(copy)
                variant()

            return go

        medians = measure(
            {
                "GNU parallel -j 4 --tag": into_empty_copy(parallel4),
                "pool + queue floor, 4 workers": into_empty_copy(floor4),
                f"floor importing pdbsync ({len(ours)} mods)": into_empty_copy(floor4_ours),
                "pdb-sync --parallel 4": into_empty_copy(lambda: run(pdb_sync)),
            },
            args.repeat,
        )
        report(
            f"Fresh copy of 4 targets, {4 * args.startup_entries:,} small files, --parallel 4",
            medians,
            "GNU parallel -j 4 --tag",
            "pdb-sync within x1.05",
        )
    shutil.rmtree(copy, ignore_errors=True)


def own_rss(root_pid: int) -> tuple[int, int]:
    """Resident bytes of ``root_pid`` and its descendants that are not rsync: the sum of
    their RSS now, and the sum of their peaks so far (VmHWM)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            names[int(entry.name)] = (entry / "comm").read_text().strip()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    pending, rss, peak = [root_pid], 0, 0
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        if names.get(pid, "rsync") == "rsync":
            continue
        try:
            status = (Path("/proc") / str(pid) / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak += int(line.split()[1]) * 1024
    return rss, peak


def peak_rss(argv: list[str], before: Callable[[], object]) -> tuple[int, int]:
    """Run ``argv`` on its own (polling /proc costs CPU a timed run would lose) and return
    the highest sum of its own processes' RSS seen, and the highest sum of their peaks."""
    before()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    most, most_peaks = 0, 0
    while process.poll() is None:
        rss, peaks = own_rss(process.pid)
        most, most_peaks = max(most, rss), max(most_peaks, peaks)
        time.sleep(0.01)
    if process.returncode != 0:
        sys.exit(f"bench: {argv} failed ({process.returncode})")
    return most, most_peaks


def pdb_scale_rows(args: argparse.Namespace, exe: str, work: Path, out: Path) -> None:
    """Issue 25's rows at the scale of the real archive: a divided-mmCIF tree of
    ``--pdb-entries`` files in 1,296 hash directories on tmpfs (generated once, kept in
    /dev/shm between runs), served by an unlimited local daemon. Fresh copy, re-sync of
    an up-to-date copy and a verbose json fresh copy, each against plain rsync (what a
    user would run instead) and against rsync with pdb-sync's exact flags; the re-sync
    also with the flags of each preset and of pdb-sync's old default. Every variant meets
    the same tmpfs state: one copy at a time (a fresh copy first removes the last one;
    the re-syncs share one up-to-date copy)."""
    archive = pdb_scale_archive(args, work)
    pdb_dir = out / "pdb-scale"
    copy = pdb_dir / "mmcif"
    with LocalMirror(archive, work / "mirror-pdb") as mirror:
        url = mirror.url("ftp_data", "structures/divided/mmCIF/")
        default = work / "pdb-default.toml"
        default.write_text(
            f'[paths]\npdb_dir = "{pdb_dir}"\n[sync.custom.mmcif]\nurl = "{url}"\ndest = "mmcif"\n'
        )
        starter = work / "pdb-starter.toml"
        starter.write_text(starter_text(pdb_dir, url))
        presets = {}
        for preset in ("safe", "fast", "conservative"):
            config = work / f"pdb-{preset}.toml"
            config.write_text(default.read_text() + f'preset = "{preset}"\n')
            presets[preset] = pdb_sync_argv(config)
        default_argv, starter_argv = pdb_sync_argv(default), pdb_sync_argv(starter)
        if flags_of(default_argv) != RSYNC_FLAGS:
            sys.exit(f"bench: pdb-sync now runs rsync {default_argv}; update RSYNC_FLAGS")
        plain = ["rsync", "-a", url, f"{copy}/"]
        ours = [exe, "--config", str(default), "sync", "mmcif"]
        ours_starter = [exe, "--config", str(starter), "sync", "mmcif"]

        def into_empty_copy(argv: list[str]) -> Callable[[], None]:
            def go() -> None:
                fresh(copy)
                run(argv)

            return go

        files = f"{args.pdb_entries:,} files"
        medians = measure(
            {
                "rsync -a": into_empty_copy(plain),
                "rsync, pdb-sync's flags": into_empty_copy(default_argv),
                "pdb-sync sync (no options set)": into_empty_copy(ours),
                "pdb-sync sync (config init starter)": into_empty_copy(ours_starter),
            },
            args.repeat,
        )
        report(f"PDB scale: fresh copy, {files}", medians, "rsync -a", "within x1.05")

        fresh(copy)
        run(plain)  # the up-to-date mirror every re-sync below starts from
        old_default = [*default_argv[:1], *OLD_DEFAULT_FLAGS, *default_argv[-3:]]
        sources = {copy.name: url}
        installed = installed_copy(work) if args.installed else None
        medians = measure(
            {
                "rsync -a": lambda: run(plain),
                "rsync, pdb-sync's flags": lambda: run(default_argv),
                "rsync, the starter's flags": lambda: run(starter_argv),
                "python reading rsync's pipe": lambda: run(
                    [sys.executable, "-c", PIPE_READER, *default_argv]
                ),
                "floor: pool + queue, no pdb-sync": pool_floor_jobs(sources, pdb_dir, 1),
                "floor + pdb-sync's imports": pool_floor_jobs(
                    sources, pdb_dir, 1, imported_by(ours[1:])
                ),
                "pdb-sync sync (no options set)": lambda: run(ours),
                "pdb-sync sync --format json": lambda: run([*ours, "--format", "json"]),
                "pdb-sync sync (config init starter)": lambda: run(ours_starter),
                **(
                    {"pdb-sync sync, installed in a venv": lambda: run([installed, *ours[1:]])}
                    if installed
                    else {}
                ),
                "rsync, old default (--partial-dir)": lambda: run(old_default),
                **{f"rsync, preset {name}": partial(run, argv) for name, argv in presets.items()},
            },
            args.repeat,
        )
        report(f"PDB scale: re-sync, up to date, {files}", medians, "rsync -a", "within x1.05")

        verbose = ["-v", "--itemize-changes"]
        ours_verbose = [*ours, "--rsync-verbose", "--itemize-changes", "--format", "json"]
        medians = measure(
            {
                "rsync -a -v --itemize-changes": into_empty_copy(
                    ["rsync", "-a", *verbose, url, f"{copy}/"]
                ),
                "rsync, pdb-sync's flags": into_empty_copy(
                    pdb_sync_argv(default, verbose=True, itemize_changes=True)
                ),
                "pdb-sync json -v --itemize-changes": into_empty_copy(ours_verbose),
            },
            args.repeat,
        )
        report(
            f"PDB scale: verbose json fresh copy, {files} (one event a file) > null",
            medians,
            "rsync -a -v --itemize-changes",
            "within x1.10",
        )

        print("\nPDB scale: peak RSS of pdb-sync's own processes (rsync excluded)")
        for label, argv, before in (
            ("fresh copy", ours, lambda: fresh(copy)),
            ("re-sync", ours, lambda: None),
            ("verbose json fresh copy", ours_verbose, lambda: fresh(copy)),
        ):
            rss, peaks = peak_rss(argv, before)
            print(
                f"  {label:<34} {rss / 2**20:6.1f} MB   (sum of each process's peak: "
                f"{peaks / 2**20:.1f} MB)"
            )
        print("  target: under 150 MB")
    shutil.rmtree(pdb_dir, ignore_errors=True)
    print(f"bench: {archive} stays for the next run; remove it when done")


def weekly_archive(args: argparse.Namespace, work: Path) -> tuple[Path, Path, dict]:
    """Two data roots of the PDB-scale tree on tmpfs (kept between runs): ``week0`` with
    its first status folder, and ``week1``, the same after one release of
    ``--weekly-changes`` entries (40% added, 50% modified, 10% obsolete) with its lists."""
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    base = shm / f"pdb-sync-bench-weekly-{args.pdb_entries}-{args.weekly_changes}"
    week0, week1 = base / "week0", base / "week1"
    marker = base / ".complete"
    first = FIRST_WEEK.strftime("%Y%m%d")
    second = (FIRST_WEEK + timedelta(days=7)).strftime("%Y%m%d")
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        generate_divided(week0, args.pdb_entries, atoms=args.atoms)
        for kind in ("added", "modified", "obsolete"):
            (week0 / "status" / first).mkdir(parents=True, exist_ok=True)
            (week0 / "status" / first / f"{kind}.pdb").write_text("")
        run(["cp", "-a", str(week0), str(week1)])
        changes = args.weekly_changes
        advance_divided(
            week1,
            args.pdb_entries,
            second,
            added=changes * 4 // 10,
            modified=changes // 2,
            obsolete=changes - changes * 4 // 10 - changes // 2,
        )
        marker.touch()
        print(f"bench: generated {base} (two weeks of {args.pdb_entries:,} files; kept)")
    return week0, week1, {"first": first, "second": second}


def weekly_rows(args: argparse.Namespace, exe: str, work: Path, out: Path) -> None:
    """Issue 23's rows: on tmpfs, and with ``--weekly-disk DIR`` on disk with the page
    cache dropped before each run (what a nightly job meets)."""
    week0, week1, weeks = weekly_archive(args, work)
    weekly_row(args, exe, work, (week0, week1, weeks), out / "pdb-weekly", "tmpfs")
    if args.weekly_disk is None:
        return
    disk = args.weekly_disk.resolve() / "pdb-sync-bench-weekly"
    marker = disk / f".complete-{week0.parent.name}"
    if not marker.exists():
        shutil.rmtree(disk, ignore_errors=True)
        disk.mkdir(parents=True)
        for tree in (week0, week1):
            run(["cp", "-a", str(tree), str(disk / tree.name)])
        marker.touch()
    weeks_on_disk = (disk / "week0", disk / "week1", weeks)
    weekly_row(args, exe, work, weeks_on_disk, disk / "pdb-weekly", "disk, page cache dropped")


def drop_page_cache() -> None:
    """Write dirty pages out and drop the page cache, dentries and inodes (needs root)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def weekly_row(
    args: argparse.Namespace,
    exe: str,
    work: Path,
    trees: tuple[Path, Path, dict],
    pdb_dir: Path,
    where: str,
) -> None:
    """A week of changes applied to an up-to-date copy of the PDB-scale tree. Before every
    run the copy is put back to week 0 (a local ``rsync --delete``, not timed) and the
    weekly target's state to "week 0 applied, full sync today"; the mirror serves week 1
    (on disk: and the page cache is dropped). Each run must leave the copy equal to week 1."""
    from datetime import UTC, datetime

    from pdbsync.store import updates

    week0, week1, weeks = trees
    cold = where != "tmpfs"
    copy = pdb_dir / "mmcif"
    layout = "structures/divided/mmCIF/"
    state = Path(os.environ["PDB_SYNC_STATE_DIR"])
    with LocalMirror(week1, work / "mirror-weekly") as mirror:
        url = mirror.url("ftp_data", layout)
        configs = {}
        for mode in ("full", "weekly"):
            config = work / f"weekly-{mode}.toml"
            config.write_text(
                f'[paths]\npdb_dir = "{pdb_dir}"\n[sync.custom.mmcif]\nurl = "{url}"\n'
                f'dest = "mmcif"\nupdate_mode = "{mode}"\n[sync.custom.mmcif.options]\n'
                "delete = true\n"
            )
            configs[mode] = config
        summaries = {mode: work / f"weekly-{mode}-summary.json" for mode in configs}
        key = updates.update_key(str(copy.resolve()), url)

        def week_behind() -> None:
            copy.mkdir(parents=True, exist_ok=True)
            run(["rsync", "-a", "--delete", f"{week0 / layout}/", f"{copy}/"])
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            updates.record_updates(state, {key: {"last_week": weeks["first"], "last_full": now}})
            if cold:
                drop_page_cache()

        def check(name: str) -> None:
            """The copy must be week 1 now (not timed)."""
            done = subprocess.run(
                [
                    "rsync",
                    "-a",
                    "--delete",
                    "--dry-run",
                    "--itemize-changes",
                    f"{week1 / layout}/",
                    f"{copy}/",
                ],
                capture_output=True,
                check=True,
            )
            left = [line for line in done.stdout.splitlines() if not line.startswith(b".d")]
            if left:
                sys.exit(f"bench: {name} left the copy unlike week 1: {left[:3]}")

        ours = {
            f"pdb-sync {label}": [
                *(exe, "--config", str(configs[mode]), "sync"),
                *("--summary", str(summaries[mode])),
            ]
            for mode, label in (("full", "full re-sync"), ("weekly", "weekly update"))
        }
        argvs = {"rsync -a --delete": ["rsync", "-a", "--delete", "--stats", url, f"{copy}/"]}
        argvs.update(ours)
        medians = measure(
            {name: partial(run, argv) for name, argv in argvs.items()},
            args.repeat,
            setup=week_behind,
            check=check,
        )
        files = f"{args.pdb_entries:,} files, {args.weekly_changes:,} changed entries"
        report(
            f"Weekly update ({where}): one week applied, {files}",
            medians,
            "pdb-sync full re-sync",
            f"weekly x{8 if cold else 3} faster than the full re-sync",
        )
        import orjson

        listed = {}
        for mode, path in summaries.items():
            (result,) = orjson.loads(path.read_bytes())["results"]
            listed[mode] = result["stats"].get("files_total")
            if mode == "weekly":
                print(
                    f"  weekly run: mode {result['mode']}, weeks {result['weeks']}, added "
                    f"{result['added']}, modified {result['modified']}, "
                    f"obsolete {result['obsolete']}"
                )
        share = listed["weekly"] / listed["full"] if listed["full"] else float("nan")
        print(
            f"  files rsync listed (--stats): weekly {listed['weekly']:,} vs full "
            f"{listed['full']:,} ({share:.2%}; target: under 5%)"
        )
    shutil.rmtree(pdb_dir, ignore_errors=True)
    print(f"bench: {week0.parent} stays for the next run; remove it when done")


def starter_text(pdb_dir: Path, url: str) -> str:
    """What ``config init`` writes, its mmcif target pointed at ``url``."""
    import tomlkit

    from pdbsync.config.edit import starter_config

    document = tomlkit.parse(starter_config(str(pdb_dir)))
    mmcif = document["sync"]["custom"]["mmcif"]
    del mmcif["path"]
    mmcif["url"] = url
    mmcif["dest"] = "mmcif"  # the copy every variant of a row shares
    return tomlkit.dumps(document)


def validate_rows(exe: str, work: Path) -> None:
    """``config validate`` of big configs (issue 8: 20,000 targets did not finish in 11
    minutes when the dest overlap check was pairwise), each with an empty state
    directory, so the check is not skipped by the cache of valid configs."""
    print("\nconfig validate (first run: no cache of valid configs)")
    for count in (1_000, 2_000, 20_000):
        pdb_dir = work / "validate-pdb"
        lines = ["[paths]", f'pdb_dir = "{pdb_dir}"', ""]
        for index in range(count):
            lines += [
                f"[sync.custom.t{index}]",
                f'url = "rsync://127.0.0.1/ftp_data/x{index}/"',
                f'dest = "d{index // 100}/t{index}"',
                "",
            ]
        config = work / f"validate-{count}.toml"
        config.write_text("\n".join(lines))
        times = []
        for _ in range(3):
            state = fresh(work / "validate-state")
            env = dict(os.environ, PDB_SYNC_STATE_DIR=str(state))
            start = time.perf_counter()
            subprocess.run(
                [exe, "--config", str(config), "config", "validate"],
                env=env,
                stdout=subprocess.DEVNULL,
                check=True,
            )
            times.append(time.perf_counter() - start)
        print(f"  {count:>6,} targets  {statistics.median(times):7.2f} s  (median of 3)")


def stop_rows(exe: str, work: Path, archive: Path, out: Path, repeat: int) -> None:
    """How long pdb-sync takes from SIGTERM to exit with its summary written, while a
    transfer is under way (a target whose daemon waits 60 s before sending): Slurm sends
    SIGKILL KillWait after SIGTERM (30 s by default, 5 s at some sites). This was a bound
    in tests/test_lifecycle.py; it is measured here, where a busy machine cannot fail it."""
    import signal

    mirror = LocalMirror(archive, work / "mirror-stall")
    mirror.add_module("stall", archive, delay=60)
    with mirror:
        config = work / "stop.toml"
        lines = ["[paths]", f'pdb_dir = "{out}"', ""]
        for name, path in TARGETS.items():
            url = mirror.url("stall", path)
            lines += [f"[sync.custom.{name}]", f'url = "{url}"', f'dest = "{name}"', ""]
        config.write_text("\n".join(lines))
        took = []
        for _ in range(repeat):
            fresh(out)
            summary = work / "stop-summary.json"
            summary.unlink(missing_ok=True)
            argv = [exe, "--config", str(config), "sync", "--all", "--parallel", "4"]
            proc = subprocess.Popen(
                [*argv, "--format", "json", "--summary", str(summary)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            assert proc.stdout is not None
            started = 0
            for line in proc.stdout:  # every transfer under way before the signal
                started += b'"type":"sync_started"' in line
                if started == len(TARGETS):
                    break
            signalled = time.perf_counter()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.communicate(timeout=60)
            took.append(time.perf_counter() - signalled)
            if proc.returncode != 143 or not summary.exists():
                raise SystemExit(f"bench: SIGTERM gave exit {proc.returncode}, no summary")
    print(
        f"\nSIGTERM to exit (summary written), {len(TARGETS)} transfers under way: median "
        f"{statistics.median(took) * 1000:.0f} ms (max {max(took) * 1000:.0f} ms) over "
        f"{repeat} runs   target: well under Slurm's KillWait (5 s at the strictest sites)"
    )


def checkout_runner(tree: Path, work: Path, label: str) -> Callable[..., bytes]:
    """``pdb-sync ARGS`` from the checkout ``tree``: the interpreter this script runs on,
    ``PYTHONPATH=tree`` (ahead of any installed copy), and a launcher written like the
    console script with that tree's entry point (``pdbsync.cli.main`` since the package
    layout of issue 22, ``pdbsync.cli`` before it). Bytecode goes to one cache under
    ``work`` for every tree (``PYTHONPYCACHEPREFIX``), so a read-only checkout runs
    compiled like an installed one and no tree gets ``__pycache__`` written into it.
    Each checkout has its own state directory. ``python_flags`` go to the interpreter
    (``-X importtime``); the run's stderr is returned."""
    tree = tree.resolve()
    if not (tree / "pdbsync" / "__init__.py").is_file():
        sys.exit(f"bench: --baseline {tree}: no pdbsync package there")
    module = (
        "pdbsync.cli.main" if (tree / "pdbsync" / "cli" / "main.py").is_file() else "pdbsync.cli"
    )
    launcher = work / f"launch-{label}.py"
    launcher.write_text(f"import sys\nfrom {module} import entry\nsys.exit(entry())\n")
    env = dict(
        os.environ,
        PYTHONPATH=str(tree),
        PYTHONPYCACHEPREFIX=str(work / "pycache"),
        PDB_SYNC_STATE_DIR=str(work / f"state-{label}"),
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def go(args: list[str], python_flags: Sequence[str] = ()) -> bytes:
        argv = [sys.executable, *python_flags, str(launcher), *args]
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode != 0:
            sys.exit(f"bench: {argv} ({tree}) failed ({done.returncode}): {done.stderr[-2000:]!r}")
        return done.stderr

    return go


def own_import_time(side: Callable[..., bytes], argv: list[str]) -> tuple[float, int]:
    """Seconds of ``-X importtime`` self time of pdbsync's own modules in one run of
    ``argv``, and how many there were: the part of a run a package layout can change,
    measured without the transfer's noise around it."""
    err = side(argv, python_flags=("-X", "importtime")).decode()
    rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:")]
    ours = [int(row[0].split(":")[1]) for row in rows[1:] if row[2].strip().startswith("pdbsync")]
    return sum(ours) / 1e6, len(ours)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """The first quartile, median and third quartile of ``values``."""
    low, middle, high = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return low, middle, high


def report_spread(
    title: str, runs: dict[str, tuple[list[float], list[float]]], baseline: str
) -> None:
    """Median, spread (quartiles and minimum: on a shared machine one slow run says
    little) and the ratio of medians to ``baseline``, wall and CPU."""
    print(f"\n{title}")
    base_wall, base_cpu = (statistics.median(values) for values in runs[baseline])
    for name, (walls, cpus) in runs.items():
        low, wall, high = (value * 1000 for value in quartiles(walls))
        cpu = statistics.median(cpus)
        print(
            f"  {name:<26} {wall:8.1f} ms  (quartiles {low:.1f}-{high:.1f}, min "
            f"{min(walls) * 1000:.1f})  x{wall / 1000 / base_wall:5.3f}"
            f"   cpu {cpu * 1000:6.1f} ms  x{cpu / base_cpu:5.3f}"
        )
    print(f"  {len(runs[baseline][0])} interleaved runs each; ratios of medians to {baseline}")


def baseline_rows(args: argparse.Namespace, work: Path, out: Path) -> None:
    """Issue 22's rows: this checkout against ``--baseline`` (main before the change),
    run by run, for what a refactor could slow: start-up (``--version``) and the fixed
    cost of an up-to-date re-sync, small (4 targets) and, with ``--pdb-entries``, at PDB
    scale. Copies land in /dev/shm; ``rsync`` with the same flags runs beside the re-syncs
    as a yardstick for the machine's drift."""
    here = Path(__file__).resolve().parent.parent
    sides = {
        "before": checkout_runner(args.baseline, work, "before"),
        "after": checkout_runner(here, work, "after"),
    }
    print(f"bench: before = {args.baseline.resolve()}, after = {here}")
    print(f"bench: load average at start {os.getloadavg()}")
    for side in sides.values():
        side(["--version"])  # compile both trees' bytecode before anything is timed
    # a tenth of a second a run, against noise of the same size: five times the runs
    runs = samples(
        {label: partial(side, ["--version"]) for label, side in sides.items()}, 5 * args.repeat
    )
    report_spread("pdb-sync --version", runs, "before")

    archive = startup_archive(args, work)
    copy = out / "baseline-small"
    with LocalMirror(archive, work / "mirror-baseline") as mirror:
        config = write_config(work / "baseline-small.toml", mirror, copy)
        argv = ["--config", str(config), "sync", "--all", "--parallel", "4"]
        for side in sides.values():
            side(argv)  # the copy up to date, and a warm state directory on each side
        rsyncs = [
            ["rsync", *RSYNC_FLAGS, mirror.url("ftp_data", path), f"{copy / name}/"]
            for name, path in TARGETS.items()
        ]
        variants: dict[str, Callable[[], object]] = {
            label: partial(side, argv) for label, side in sides.items()
        }
        variants["rsync x4, one at a time"] = lambda: [run(command) for command in rsyncs]
        runs = samples(variants, args.repeat)
        report_spread(
            f"Re-sync of 4 targets up to date ({4 * args.startup_entries:,} files), --parallel 4",
            runs,
            "before",
        )
        print("\nThe same re-sync: self time of importing pdbsync's own modules (-X importtime)")
        imports: dict[str, list[tuple[float, int]]] = {label: [] for label in sides}
        for _ in range(args.repeat):  # interleaved, as every row
            for label, side in sides.items():
                imports[label].append(own_import_time(side, argv))
        for label, times in imports.items():
            low, middle, high = (seconds * 1000 for seconds in quartiles([t for t, _ in times]))
            print(
                f"  {label:<26} {middle:8.1f} ms  (quartiles {low:.1f}-{high:.1f})  "
                f"{times[0][1]} modules"
            )
    shutil.rmtree(copy, ignore_errors=True)

    if args.pdb_entries:
        archive = pdb_scale_archive(args, work)
        pdb_dir = out / "baseline-pdb"
        with LocalMirror(archive, work / "mirror-baseline-pdb") as mirror:
            url = mirror.url("ftp_data", "structures/divided/mmCIF/")
            config = work / "baseline-pdb.toml"
            config.write_text(
                f'[paths]\npdb_dir = "{pdb_dir}"\n'
                f'[sync.custom.mmcif]\nurl = "{url}"\ndest = "mmcif"\n'
            )
            argv = ["--config", str(config), "sync", "mmcif"]
            for side in sides.values():
                side(argv)
            plain = ["rsync", *RSYNC_FLAGS, url, f"{pdb_dir / 'mmcif'}/"]
            variants = {label: partial(side, argv) for label, side in sides.items()}
            variants["rsync, pdb-sync's flags"] = lambda: run(plain)
            runs = samples(variants, args.repeat)
            report_spread(
                f"PDB scale: re-sync, up to date, {args.pdb_entries:,} files", runs, "before"
            )
        shutil.rmtree(pdb_dir, ignore_errors=True)
        print(f"bench: {archive} stays for the next run; remove it when done")
    print(f"bench: load average at end {os.getloadavg()}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=13000)
    parser.add_argument(
        "--atoms",
        type=int,
        default=20,
        help="atom lines per entry: 20 gives ~0.4 KB files (rsync's worst "
        "case for lines per second), 400 gives ~8 KB",
    )
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument(
        "--startup-entries",
        type=int,
        default=5500,
        help="entries per target for the fixed-cost and fresh-copy rows (5,500: 22,000 files)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs of each variant (5; 9 with --baseline)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench-run"))
    parser.add_argument(
        "--bwlimit",
        type=int,
        default=2500,
        help="KB/s per transfer for the parallel comparison (a WAN mirror)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where copies land (default: /dev/shm, so disk noise stays out)",
    )
    parser.add_argument(
        "--verbose-bwlimit",
        type=int,
        default=0,
        help="rsync --bwlimit (KB/s) in the verbose comparison, for every variant alike "
        "(0: unlimited, rsync's worst case of ~14k lines/s; 600 gives the ~2,800 lines/s "
        "rsync emits on a real link)",
    )
    parser.add_argument(
        "--skip-parallel",
        action="store_true",
        help="only the verbose comparison and the start-up time",
    )
    parser.add_argument(
        "--pdb-entries",
        type=int,
        default=250_000,
        help="files of the PDB-scale tree (kept in /dev/shm between runs; 0: no PDB-scale rows)",
    )
    parser.add_argument(
        "--pdb-scale-only",
        action="store_true",
        help="only the PDB-scale rows (fresh copy, re-sync, verbose json, peak RSS)",
    )
    parser.add_argument(
        "--installed",
        action="store_true",
        help="PDB-scale re-sync: also pdb-sync installed from this checkout into a fresh "
        "venv (pip install, not editable), as a user runs it",
    )
    parser.add_argument(
        "--weekly-only", action="store_true", help="only the weekly-update row (issue 23)"
    )
    parser.add_argument(
        "--weekly-disk",
        type=Path,
        default=None,
        metavar="DIR",
        help="also run the weekly-update row with the trees in DIR on disk, dropping the page "
        "cache before each run (root only)",
    )
    parser.add_argument(
        "--weekly-changes",
        type=int,
        default=1000,
        help="entries one weekly release changes in the weekly-update row",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="compare this checkout with the one in DIR (PYTHONPATH=DIR), interleaved: "
        "--version and up-to-date re-syncs (small; PDB scale unless --pdb-entries 0); "
        "use --repeat 9 or more",
    )
    args = parser.parse_args()
    if args.repeat is None:
        args.repeat = 9 if args.baseline is not None else 5
    return args


def mini_pdb_archive(args: argparse.Namespace, work: Path) -> Path:
    """The generated mini-PDB the daemons serve, made again only when its shape changed."""
    archive = work / "archive"
    marker = archive / f".entries-{args.entries}-atoms-{args.atoms}"
    if not marker.exists() and not args.pdb_scale_only:
        shutil.rmtree(archive, ignore_errors=True)
        files = generate(archive, entries=args.entries, atoms=args.atoms)
        marker.touch()
        print(f"bench: generated {len(files):,} files")
    return archive


def parallel_rows(
    args: argparse.Namespace, exe: str, work: Path, out: Path, wan: LocalMirror
) -> None:
    """pdb-sync --parallel N vs GNU parallel and sequential rsync, over the slow mirror.

    The check that both sides run the same rsync comes first, also with --skip-parallel.
    """
    config = write_config(work / "parallel.toml", wan, out)
    runs = pdb_sync_argv(config)
    if flags_of(runs) != RSYNC_FLAGS:
        sys.exit(f"bench: pdb-sync now runs rsync {runs}; update RSYNC_FLAGS")
    if args.skip_parallel:
        return
    sources = {name: wan.url("ftp_data", path) for name, path in TARGETS.items()}

    def sequential() -> None:
        fresh(out)
        for name, url in sources.items():
            run(["rsync", *RSYNC_FLAGS, url, f"{out / name}/"])

    def gnu_parallel() -> None:
        fresh(out)
        jobs = "\n".join(f"{url} {out / name}/" for name, url in sources.items())
        subprocess.run(
            [
                "parallel",
                "-j",
                str(args.parallel),
                "--tag",
                "--colsep",
                " ",
                "rsync",
                *RSYNC_FLAGS,
                "{1}",
                "{2}",
            ],
            input=jobs.encode(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )

    def pdb_sync_parallel() -> None:
        fresh(out)
        run([exe, "--config", str(config), "sync", "--all", "--parallel", str(args.parallel)])

    medians = measure(
        {
            "rsync, sequential": sequential,
            f"GNU parallel -j {args.parallel} --tag": gnu_parallel,
            f"pdb-sync --parallel {args.parallel}": pdb_sync_parallel,
        },
        args.repeat,
    )
    report(
        f"Parallel sync of {len(TARGETS)} targets ({args.entries:,} entries each; daemon "
        f"--bwlimit={args.bwlimit})",
        medians,
        f"GNU parallel -j {args.parallel} --tag",
        "pdb-sync within x1.05",
    )


def verbose_rows(
    args: argparse.Namespace, exe: str, work: Path, out: Path, mirror: LocalMirror
) -> None:
    """One verbose rsync's lines through pdb-sync (text, json) vs rsync alone."""
    verbose_config = write_config(
        work / "verbose.toml", mirror, out, verbose=True, bwlimit=args.verbose_bwlimit
    )
    limit = [f"--bwlimit={args.verbose_bwlimit}"] if args.verbose_bwlimit else []
    whole = mirror.url("ftp_data", "")
    lines = subprocess.run(
        ["rsync", "-a", "-v", "--itemize-changes", "--dry-run", whole, str(fresh(out))],
        capture_output=True,
        check=True,
    ).stdout.count(b"\n")

    verbose_argv = pdb_sync_argv(verbose_config)  # the very rsync pdb-sync runs
    old_default_argv = [
        "rsync", "-a", "-v", "--itemize-changes", "--partial-dir=.rsync-partial",
        "--info=progress2", "--stats", *limit, whole, f"{out / 'everything'}/",
    ]  # fmt: skip

    def old_default_verbose() -> None:
        fresh(out)
        run(old_default_argv)

    def raw_verbose() -> None:
        fresh(out)
        run(verbose_argv)

    def piped_verbose() -> None:
        """The cost of reading rsync's output through a pipe at all (``| cat``)."""
        fresh(out)
        rsync = subprocess.Popen(
            verbose_argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run(["cat"], stdin=rsync.stdout, stdout=subprocess.DEVNULL, check=True)
        assert rsync.stdout is not None
        rsync.stdout.close()
        if rsync.wait() != 0:
            raise SystemExit("bench: rsync | cat failed")

    def pdb_sync_verbose(fmt: str) -> Callable[[], None]:
        def go() -> None:
            fresh(out)
            run([exe, "--config", str(verbose_config), "sync", "everything", "--format", fmt])

        return go

    medians = measure(
        {
            "rsync -v --itemize-changes > null": raw_verbose,
            "  same, with the old --partial-dir": old_default_verbose,
            "rsync ... | cat > null": piped_verbose,
            "pdb-sync text > null": pdb_sync_verbose("text"),
            "pdb-sync json > null": pdb_sync_verbose("json"),
        },
        args.repeat,
    )
    report(
        f"Verbose output, one rsync, ~{lines:,} lines"
        + (f" (rsync --bwlimit={args.verbose_bwlimit})" if args.verbose_bwlimit else ""),
        medians,
        "rsync -v --itemize-changes > null",
        "text within x1.10, json within x1.20 (issue 10)",
    )


def version_row(exe: str) -> None:
    version = [timed(lambda: run([exe, "--version"])) for _ in range(10)]
    print(
        f"\npdb-sync --version: median {statistics.median(version) * 1000:.0f} ms "
        f"(min {min(version) * 1000:.0f} ms) over 10 runs   target: under 150 ms"
    )


def main() -> int:
    args = parse_args()
    if args.baseline is not None:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
        shm = Path("/dev/shm")
        baseline_rows(args, work, args.out or (shm / "pdb-sync-bench" if shm.is_dir() else work))
        return 0
    if shutil.which("parallel") is None and not (args.pdb_scale_only or args.weekly_only):
        sys.exit("bench: GNU parallel is missing; PDB_SYNC_BENCH=1 bash scripts/bootstrap.sh")
    exe = pdb_sync_exe()
    work = args.workdir.resolve()
    # pdb-sync's run history and caches go with the benchmark, not into the user's state.
    os.environ["PDB_SYNC_STATE_DIR"] = str(work / "state")
    compiled_like_an_install(work)
    archive = mini_pdb_archive(args, work)
    shm = Path("/dev/shm")
    out = args.out or (shm / "pdb-sync-bench" if shm.is_dir() else work / "out")
    if args.pdb_scale_only:
        pdb_scale_rows(args, exe, work, out)
        return 0
    if args.weekly_only:
        weekly_rows(args, exe, work, out)
        return 0
    wan = LocalMirror(archive, work / "mirror-wan", daemon_args=(f"--bwlimit={args.bwlimit}",))
    with wan, LocalMirror(archive, work / "mirror") as mirror:
        parallel_rows(args, exe, work, out, wan)
        startup_rows(args, exe, work, out)
        verbose_rows(args, exe, work, out, mirror)
    shutil.rmtree(out, ignore_errors=True)
    if args.pdb_entries:
        pdb_scale_rows(args, exe, work, out)
        weekly_rows(args, exe, work, out)
    validate_rows(exe, work)
    stop_rows(exe, work, archive, out, args.repeat)
    version_row(exe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
