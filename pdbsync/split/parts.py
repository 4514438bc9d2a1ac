"""Split transfers: one huge target as several rsyncs, each over a group of its top-level
directories, balanced by bytes.

Why: a PDB mirror is dominated by one or two huge targets, and a public mirror caps each
connection's bandwidth, so target-level parallelism cannot end before the biggest
target does. A target with ``split = N`` (or ``"auto"``, or ``--split``) becomes N jobs
in the same pool; ``--parallel`` still bounds the rsync processes.

How a part is told what to copy: filter rules, not ``--files-from``. Part *k* of a
target gets, before the target's own include/exclude rules, only ``H`` (hide from the
sender) and ``P`` (protect from --delete on the receiver) rules for every top-level
name but its directories (:func:`outside`: ``/a[!bc]*``, ``/a[bc]?*``, ``/a`` ...),
and the last part, the *catch-all*, gets ``H``/``P`` rules for every other part's
directories and nothing else, so it carries the top-level regular files, symlinks and
any directory that appeared upstream after the listing. No part rule includes: a
``+ /ab`` first would re-include an ``ab`` the target's rules exclude (the listing may
be older than those rules, or than the source), so the target's rules still decide every
name a part owns. Every top-level name belongs to exactly one part, and inside a part
rsync applies the target's own rules and ``--delete`` exactly as one rsync would (a
directory removed upstream is deleted by the part that owns its name, or by the
catch-all if no part names it; an excluded one is protected by all). ``--files-from`` is
avoided because rsync 3.5.0 fails it with exit 24 ("file has vanished") for valid paths
against a daemon module with ``use chroot = no``, and because it cannot delete.

Where the sizes come from: one ``rsync --list-only -r`` of the source, with the
target's filter flags, run in the parent before the pool starts (listings of several
targets run at once, at most ``max_per_host`` per host). Its per-directory byte counts
are kept in ``listings.json`` in the state directory (pdbsync.store.history) and reused for
:data:`LISTING_MAX_AGE_S` while what they depend on is the same (:func:`listing_key`:
the url, the filter flags and their pattern files' contents, the size bounds), so the
listing (a full file-list pass of the source; its cost: docs/configuration.md) is paid
once a week, not every run. Sizes only balance the parts; a stale
listing never changes what is copied.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from pdbsync import log, outputs
from pdbsync.paths import lock_path
from pdbsync.rsync.hosts import host_of
from pdbsync.run import locks
from pdbsync.run.jobs import Job
from pdbsync.run.locks import DestLock

#: The state-directory file that keeps each split target's last listing.
LISTING_FILE = "listings.json"
#: How long a listing's sizes are trusted for balancing (seconds).
LISTING_MAX_AGE_S = 7 * 86400
#: ``split = "auto"`` makes no cut that leaves a piece under this share of a stream's bytes.
MIN_PIECE = 0.05
#: ``split = "auto"``'s fine-grained way: parts of 1/AUTO_GRAIN of a slot's fair share.
AUTO_GRAIN = 4
#: The most parts a target is split into (as --parallel's bound).
MAX_PARTS = 100
#: Connection flags a listing keeps, so it gives up as the transfer would.
_CONNECT_FLAGS = ("--timeout=", "--contimeout=")
_LIST_LINE = re.compile(r"^(?P<perms>\S{10})\s+(?P<size>[\d,.]+)\s+\S+\s+\S+\s(?P<name>.*)$")
_ESCAPE = re.compile(r"\\#([0-7]{3})")
#: Characters rsync's wildmatch treats as special; a pattern with any is escaped.
_WILD = set("*?[\\")
#: Last characters that may go into a ``[...]`` class without quoting.
_CLASS_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._")


@dataclass(frozen=True)
class Listing:
    """What one listing of a target's source says, as far as splitting cares."""

    dirs: dict[str, int]  # top-level directory -> bytes of the files below it
    other_bytes: int  # top-level files, links and names no filter rule can carry
    seconds: float = 0.0  # how long the listing took (0: reused)
    listed_at: float = 0.0  # when it was made (epoch seconds)

    @property
    def total(self) -> int:
        return sum(self.dirs.values()) + self.other_bytes


# -- the listing --------------------------------------------------------------------------


def listing_argv(job: Job) -> list[str]:
    """``rsync --list-only -r`` of the job's source with its filter and timeout flags."""
    command = job.command
    connect = [flag for flag in command.flags if flag.startswith(_CONNECT_FLAGS)]
    return [
        command.program,
        *("--list-only", "-r", "--no-motd", "-8"),
        *command.part_filters,
        *connect,
        *command.filters,
        "--",
        job.url,
    ]


def size_bounds(job: Job) -> tuple[int | None, int | None]:
    """The job's ``--min-size``/``--max-size`` (None: unbounded): rsync lists the files
    outside them but does not move them, so they weigh nothing in a part."""
    bounds: dict[str, int | None] = {"--min-size=": None, "--max-size=": None}
    for arg in job.command.flags:
        for flag in bounds:
            if arg.startswith(flag) and arg[len(flag) :].isdigit():
                bounds[flag] = int(arg[len(flag) :])
    return bounds["--min-size="], bounds["--max-size="]


def parse_listing(
    lines: Iterable[str], min_size: int | None = None, max_size: int | None = None
) -> Listing:
    """Per top-level directory, the bytes of every non-directory below it.

    Lines are rsync's ``--list-only`` format (``perms size date time name``, names
    relative to the source, ``\\#ooo`` escapes). Top-level non-directories, and
    directories whose name a filter rule cannot carry (see :func:`ruleable`), count
    as ``other_bytes``: they go with the catch-all part. Files outside ``min_size`` ..
    ``max_size`` (rsync's size bounds, which it does not apply to a listing) count 0.
    """
    dirs: dict[str, int] = {}
    other = 0
    for line in lines:
        match = _LIST_LINE.match(line.rstrip("\n"))
        if not match:
            continue
        name = _ESCAPE.sub(lambda m: chr(int(m[1], 8)), match["name"])
        is_dir = match["perms"].startswith("d")
        size = int(re.sub(r"[,.]", "", match["size"]))
        if (min_size is not None and size < min_size) or (max_size is not None and size > max_size):
            size = 0
        if name == "." or name.startswith("./"):
            name = name[2:]
            if not name:
                continue
        top, _, below = name.partition("/")
        if not below:
            if is_dir:
                dirs.setdefault(top, 0)
            else:
                other += size
        elif not is_dir:
            dirs[top] = dirs.get(top, 0) + size
    for name in [n for n in dirs if not ruleable(n)]:
        other += dirs.pop(name)
    return Listing(dirs, other)


def ruleable(name: str) -> bool:
    """Whether a top-level name can be written as one filter rule (no control
    characters, no surrounding whitespace, which rule parsing would mangle) and inside
    a ``[...]`` class of :func:`outside` (ASCII only: rsync matches a class against one
    byte, not one character)."""
    return (
        bool(name)
        and name == name.strip()
        and name.isascii()
        and all(ord(c) >= 32 and c != "\x7f" for c in name)
    )


def run_listings(
    jobs: Sequence[Job], max_per_host: int, cancel: Any = None
) -> dict[str, Listing | str]:
    """List the sources of ``jobs`` (target name -> Listing, or why it failed).

    Several at once, at most ``max_per_host`` per mirror host, as subprocesses of this
    process with their output in temporary files (no threads: the pool forks later).
    A set ``cancel`` stops them; those targets then have no listing.
    """
    import tempfile  # here: every run imports this module, only a split run lists

    from pdbsync.run.worker import rsync_environment

    pending = list(jobs)
    done: dict[str, Listing | str] = {}
    while pending:
        wave, per_host, rest = [], {}, []
        for job in pending:
            host = host_of(job.url)
            if per_host.get(host, 0) < max_per_host:
                per_host[host] = per_host.get(host, 0) + 1
                wave.append(job)
            else:
                rest.append(job)
        pending = rest
        started = []
        for job in wave:
            # closed below, once this wave's listings have ended
            out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
            argv = listing_argv(job)
            log.debug("{}: listing: {}", job.name, " ".join(argv))
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=rsync_environment(),
                    start_new_session=True,
                )
            except OSError as exc:
                done[job.name] = f"cannot start rsync: {exc}"
                continue
            started.append((job, proc, out, err, time.monotonic()))
        for job, proc, out, err, began in started:
            while proc.poll() is None:
                if cancel is not None and cancel.is_set():
                    proc.kill()
                time.sleep(0.01)
            seconds = time.monotonic() - began
            out.seek(0)
            err.seek(0)
            text = out.read().decode("utf-8", "replace")
            problem = err.read().decode("utf-8", "replace").strip().splitlines()
            out.close()
            err.close()
            if proc.returncode != 0:
                detail = problem[0] if problem else ""
                done[job.name] = f"listing failed (rsync exit {proc.returncode}) {detail}".strip()
                continue
            listing = parse_listing(text.splitlines(), *size_bounds(job))
            done[job.name] = replace(listing, seconds=seconds, listed_at=time.time())
    return done


def _filters(job: Job) -> list[str]:
    return [*job.command.part_filters, *job.command.filters]


def _pattern_files(job: Job) -> list[str]:
    """The files the job's ``--include-from``/``--exclude-from`` flags name."""
    flags = ("--include-from=", "--exclude-from=")
    return [a.split("=", 1)[1] for a in job.command.filters if a.startswith(flags)]


def listing_key(job: Job) -> dict[str, Any]:
    """Everything a listing's sizes depend on, for :func:`cached_listing`: the url, the
    filter flags, the contents of the pattern files they name (a changed file lists
    again, though its name is the same; an unreadable one is None) and the size bounds."""
    from pdbsync.digest import blake2b

    files: dict[str, str | None] = {}
    for path in _pattern_files(job):
        try:
            files[path] = blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()
        except OSError:
            files[path] = None
    return {
        "url": job.url,
        "filters": _filters(job),
        "files": files,
        "sizes": list(size_bounds(job)),
    }


def clears_filters(job: Job) -> str | None:
    """Why the job's parts could not narrow its tree, if a pattern file has a ``!`` line:
    rsync reads it as "clear the rules so far", which would drop the part's own too."""
    for path in _pattern_files(job):
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue  # the listing and the transfer report it
        if any(line.strip() == "!" for line in lines):
            return f"{path} has a '!' line, which would clear each part's filter rules"
    return None


def cached_listings(directory: Path) -> dict[str, Any]:
    """The listings kept in the state directory ({} if none or unreadable)."""
    try:
        data = orjson.loads((directory / LISTING_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_listing(entry: Any, key: Mapping[str, Any], now: float) -> Listing | None:
    """A kept listing made under ``key`` (:func:`listing_key`) if it is fresh enough."""
    if not isinstance(entry, dict):
        return None
    if entry.get("key") != key:
        return None
    listed_at = entry.get("listed_at")
    if not isinstance(listed_at, int | float) or now - listed_at > LISTING_MAX_AGE_S:
        return None
    dirs = entry.get("dirs")
    if not isinstance(dirs, dict):
        return None
    return Listing(
        {str(k): int(v) for k, v in dirs.items()}, int(entry.get("other_bytes", 0)), 0.0, listed_at
    )


def keep_listings(directory: Path, fresh: Mapping[str, tuple[Mapping[str, Any], Listing]]) -> None:
    """Add fresh listings, each with the :func:`listing_key` it was made under (taken
    before it started), to ``listings.json`` (atomically; a failure only warns)."""
    data = cached_listings(directory)
    for name, (key, listing) in fresh.items():
        data[name] = {
            "key": key,
            "listed_at": listing.listed_at,
            "listing_s": round(listing.seconds, 3),
            "dirs": listing.dirs,
            "other_bytes": listing.other_bytes,
        }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        outputs.write_file(directory / LISTING_FILE, orjson.dumps(data), label=str(directory))
    except (OSError, outputs.OutputWriteError) as exc:
        log.warning("could not keep the split listings in {}: {}", directory, exc)


# -- dividing -----------------------------------------------------------------------------


def part_count(split: int | str, directories: int) -> tuple[int, str]:
    """How many parts a target with ``split = N`` gets, and why in words: N, but never
    more parts than top-level directories. (``"auto"`` is decided for all the run's
    targets together: :func:`auto_loads`.)"""
    wanted, why = int(split), f"split = {split}"
    if wanted > directories:
        return directories, f"{why}; only {directories} top-level directories"
    return wanted, why


def auto_loads(
    weights: Mapping[str, float], splittable: Mapping[str, int], streams: int
) -> dict[str, list[float]]:
    """The byte loads of the parts of each ``split = "auto"`` target, decided for all
    the run's jobs together.

    Each of ``streams`` rsync slots should carry ``total / streams`` bytes, in as few
    rsyncs as can be: every connection has a fixed cost, even on loopback, so many small
    parts end later than a few (docs/benchmarks.md, "Split transfers"). Three ways to cut
    are tried, and each is scored by what the scheduler will do with its jobs (longest
    first, each to the slot free first, :func:`dispatched_end`): the fewest jobs among
    those that end within 1 % of the best wins.

    ``weights``: every job of the run (bytes); ``splittable``: the ``"auto"`` targets
    -> their top-level directory count, the most parts each can have. With one stream
    nothing is split.
    """
    if streams < 2 or sum(weights.values()) <= 0:
        return {name: [weights[name]] for name in splittable}
    scored = []
    for way in (_fill_as_dispatched, _best_fit, _even_grain):
        loads = way(weights, splittable, streams)
        for name, pieces in loads.items():
            most = max(1, splittable[name])
            if len(pieces) > most:  # too few directories to cut where wanted: even parts
                loads[name] = [weights[name] / most] * most
        jobs = [w for n, w in weights.items() if n not in loads]
        jobs += [piece for pieces in loads.values() for piece in pieces]
        scored.append((dispatched_end(jobs, streams), len(jobs), loads))
    best = min(end for end, _count, _loads in scored)
    return min((s for s in scored if s[0] <= best * 1.01), key=lambda s: s[1])[2]


def dispatched_end(sizes: Iterable[float], streams: int) -> float:
    """When the last of these jobs ends (in bytes at one stream's rate) if they start
    longest first, each on the slot that is free first: the scheduler's rule."""
    slots = [0.0] * streams
    for size in sorted(sizes, reverse=True):
        slots[slots.index(min(slots))] += size
    return max(slots)


def _line(weights: Mapping[str, float]) -> list[tuple[float, str]]:
    return sorted(((w, n) for n, w in weights.items()), key=lambda item: (-item[0], item[1]))


def _back_in_line(line: list[tuple[float, str]], item: tuple[float, str]) -> None:
    line.insert(next((k for k, other in enumerate(line) if other[0] < item[0]), len(line)), item)


def _fill_as_dispatched(
    weights: Mapping[str, float], splittable: Mapping[str, int], streams: int
) -> dict[str, list[float]]:
    """Longest first, each job to the slot free first (as the scheduler will); a
    splittable job that would run past the slot's fair share is cut there, and its
    rest goes back in line."""
    segment = sum(weights.values()) / streams
    slack = MIN_PIECE * segment
    slots = [0.0] * streams
    pieces: dict[str, list[float]] = {name: [] for name in splittable}
    line = _line(weights)
    while line:
        size, name = line.pop(0)
        slot = slots.index(min(slots))
        room = segment - slots[slot]
        if name in splittable and size > room + slack and room > slack:
            slots[slot] = segment
            pieces[name].append(room)
            _back_in_line(line, (size - room, name))
            continue
        slots[slot] += size
        if name in pieces:
            pieces[name].append(size)
    return pieces


def _best_fit(
    weights: Mapping[str, float], splittable: Mapping[str, int], streams: int
) -> dict[str, list[float]]:
    """Largest job first, each whole to the slot it fills best (best-fit decreasing); a
    splittable job that fits no slot is cut to fill the emptiest one, and its rest goes
    back in line. A job within :data:`MIN_PIECE` of a slot's room counts as fitting."""
    segment = sum(weights.values()) / streams
    slack = MIN_PIECE * segment
    room = [segment] * streams
    pieces: dict[str, list[float]] = {name: [] for name in splittable}
    line = _line(weights)
    while line:
        size, name = line.pop(0)
        fitting = [i for i in range(streams) if size <= room[i] + slack]
        emptiest = max(range(streams), key=lambda i: (room[i], -i))
        if fitting or name not in splittable or room[emptiest] <= slack:
            slot = min(fitting, key=lambda i: (room[i], i)) if fitting else emptiest
            room[slot] -= size
            if name in pieces:
                pieces[name].append(size)
            continue
        cut = room[emptiest]
        room[emptiest] = 0.0
        pieces[name].append(cut)
        _back_in_line(line, (size - cut, name))
    return pieces


def _even_grain(
    weights: Mapping[str, float], splittable: Mapping[str, int], streams: int
) -> dict[str, list[float]]:
    """Even parts of at most a quarter of a slot's fair share: many rsyncs, but sand
    fills any gap the big jobs that cannot be split leave."""
    total = sum(weights.values())
    loads = {}
    for name in splittable:
        count = max(1, math.ceil(AUTO_GRAIN * streams * weights[name] / total))
        loads[name] = [weights[name] / count] * count
    return loads


def balance(
    sizes: Mapping[str, int],
    parts: int | Sequence[float],
    other_bytes: int = 0,
) -> list[list[str]]:
    """Groups of names whose byte sums come as close as they can to the wanted loads
    (``parts``: their count, for even loads, or the loads themselves), largest group
    first. Largest item first, each to the group furthest below its wanted load (for
    even loads: the lightest). The group that took ``other_bytes`` (the top-level
    files, as one item) comes last: it is the catch-all. A group left with nothing is
    left out (an rsync that copies nothing only costs a connection), so there may be
    fewer groups than asked for; the last one is then the catch-all."""
    wanted = [1.0] * parts if isinstance(parts, int) else [float(x) for x in parts]
    count = len(wanted)
    scale = (sum(sizes.values()) + other_bytes) / (sum(wanted) or 1.0)
    wanted = [w * scale for w in wanted]
    loads = [0] * count
    groups: list[list[str]] = [[] for _ in range(count)]
    catch_all = None
    items = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    if other_bytes:
        items.append(("", other_bytes))
        items.sort(key=lambda item: -item[1])
    for name, size in items:
        emptiest = min(range(count), key=lambda i: (loads[i] - wanted[i], i))
        loads[emptiest] += size
        if name == "" and other_bytes:
            catch_all = emptiest
        else:
            groups[emptiest].append(name)
    if catch_all is None:
        catch_all = min(range(count), key=lambda i: (loads[i], -i))
    order = sorted((i for i in range(count) if i != catch_all), key=lambda i: (-loads[i], i))
    kept = [sorted(groups[i]) for i in order if groups[i]]
    if groups[catch_all] or other_bytes or not kept:
        kept.append(sorted(groups[catch_all]))
    return kept


def patterns(names: Iterable[str]) -> list[str]:
    """Anchored rsync patterns matching exactly these top-level names, few of them:
    names that differ only in a last letter or digit share one ``/ab[cde]`` class
    (1,300 two-letter PDB directories need about 36 rules, not 1,300)."""
    by_stem: dict[str, list[str]] = {}
    single = []
    for name in sorted(names):
        if len(name) >= 2 and name[-1] in _CLASS_SAFE:
            by_stem.setdefault(name[:-1], []).append(name[-1])
        else:
            single.append(name)
    found = []
    for stem, lasts in by_stem.items():
        if len(lasts) == 1:
            single.append(stem + lasts[0])
        else:
            found.append("/" + _escaped(stem, wild=True) + "[" + "".join(lasts) + "]")
    found += ["/" + _escaped(name, wild=False) for name in sorted(single)]
    return found


def _escaped(text: str, wild: bool) -> str:
    """``text`` as a literal in an rsync pattern: rsync reads a backslash as an escape
    only in a pattern that has wildcards, so escape only then."""
    if not wild and not any(c in "*?[" for c in text):
        return text
    return "".join("\\" + c if c in _WILD else c for c in text)


def outside(names: Iterable[str]) -> list[str]:
    """Anchored rsync patterns that together match every top-level name except these
    (and nothing below the top level), built from the names' prefix tree: at each
    prefix, the name that is only the prefix (``/a``), the names going on with a letter
    no kept name has next (``/a[!bc]*``) and those going on past a kept name
    (``/a[bc]?*``). About three patterns per distinct first letter of the names."""
    found: list[str] = []
    kept = sorted(set(names))
    if not kept:
        return ["/*"]
    _outside_below("", kept, found)
    return found


def _outside_below(prefix: str, rests: list[str], found: list[str]) -> None:
    """:func:`outside` at one prefix; ``rests``: what follows it in each kept name."""
    stem = "/" + _escaped(prefix, wild=True)
    if prefix and "" not in rests:
        found.append("/" + _escaped(prefix, wild=False))
    following: dict[str, list[str]] = {}
    for rest in rests:
        if rest:
            following.setdefault(rest[0], []).append(rest[1:])
    found.append(f"{stem}[!{_class(following)}]*")
    ends = [letter for letter, below in following.items() if below == [""]]
    if ends:
        found.append(f"{stem}[{_class(ends)}]?*")
    for letter, below in following.items():
        if below != [""]:
            _outside_below(prefix + letter, below, found)


def _class(letters: Iterable[str]) -> str:
    """Letters inside ``[...]``, every one that is not a letter or digit escaped (rsync
    reads ``\\x`` in a class as ``x``: no ranges, ``[:classes:]`` or negation by accident)."""
    return "".join(c if c.isascii() and c.isalnum() else "\\" + c for c in sorted(letters))


def part_filters(groups: Sequence[Sequence[str]], index: int) -> list[str]:
    """The ``--filter`` arguments of part ``index`` (0-based; the last is the catch-all).

    Only hide (``H``, from the sender) and protect (``P``, from ``--delete`` on the
    receiver) rules, for top-level names the part does not own: they narrow the
    target's own rules, which still decide every name the part owns. A ``+`` rule for
    an owned name would re-include what the target's rules exclude."""
    if index == len(groups) - 1:
        hidden = patterns([name for i, group in enumerate(groups) if i != index for name in group])
    else:
        hidden = outside(groups[index])
    return [f"--filter={side} {pattern}" for pattern in hidden for side in "HP"]


def part_jobs(job: Job, groups: Sequence[Sequence[str]], loads: Sequence[int]) -> list[Job]:
    """The jobs of a split target: the target's command with each part's filters, which
    go first (rsync takes the first rule that matches, and these only hide and protect
    top-level names the part does not own), every other flag kept as it was."""
    parts = len(groups)
    return [
        replace(
            job,
            command=replace(job.command, part_filters=tuple(part_filters(groups, index))),
            part=index + 1,
            parts=parts,
            expected=float(loads[index]),
        )
        for index in range(parts)
    ]


def expand(
    jobs: Sequence[Job],
    *,
    split: int | str | None = None,
    parallel: int = 1,
    max_per_host: int = 4,
    directory: Path | None = None,
    cancel: Any = None,
) -> tuple[list[Job], list[DestLock]]:
    """Each job whose target asks for a split (``split``, the command line's, overrides
    the config's) replaced by its parts; every job gets its expected weight for
    longest-first scheduling. What was decided, and why, goes to the log (``-v``).

    Also the dest locks (pdbsync.run.locks) taken here for the split targets of a sync: a
    target's parts share one destination, so the run holds its lock for them (the
    caller releases them after the run); a target whose lock another run holds is not
    split, and its one rsync waits for the lock in its worker as usual."""
    from pdbsync.store import history as state

    directory = directory or state.state_dir()
    wanted = {job.name: (split if split is not None else job.split) for job in jobs}
    candidates = [job for job in jobs if _may_split(job, wanted[job.name])]
    listings = _listings(candidates, directory, max_per_host, cancel)
    weights = expected_weights(jobs, listings, directory)
    hosts = {host_of(job.url) for job in jobs}
    streams = min(parallel, max_per_host * len(hosts))
    line = _stream_line(jobs, wanted, weights, listings)
    auto = auto_loads(
        line, {n: len(listings[n].dirs) for n in listings if wanted[n] == "auto"}, streams
    )
    total = sum(line.values())
    expanded: list[Job] = []
    held: list[DestLock] = []
    for job in jobs:
        weighed = replace(job, expected=weights.get(job.name))
        listing = listings.get(job.name)
        if listing is None:
            expanded.append(weighed)
            continue
        if job.name in auto:
            share = listing.total / total if total > 0 else 1.0
            why = f"auto: {share:.0%} of the bytes over {streams} streams"
            parts, lock = _split_job(weighed, listing, auto[job.name], why)
        else:
            count, why = part_count(wanted[job.name], len(listing.dirs))
            parts, lock = _split_job(weighed, listing, count, why)
        expanded += parts
        if lock is not None:
            held.append(lock)
    return expanded, held


def _may_split(job: Job, ask: int | str | None) -> bool:
    """Whether the job asks for a split and can have one (said in the log if not)."""
    if ask in (None, 1):
        return False
    if job.weekly:  # --split N too: its batches of changed entries are the split
        log.info("{}: not split: a weekly update", job.name)
        return False
    if not job.url.endswith("/"):
        log.info("{}: not split: its url has no trailing '/' ({})", job.name, job.url)
        return False
    clearing = clears_filters(job)
    if clearing:
        log.info("{}: not split: {}", job.name, clearing)
        return False
    return True


def _listings(
    candidates: Sequence[Job], directory: Path, max_per_host: int, cancel: Any
) -> dict[str, Listing]:
    """The listing of each candidate's source: the kept one while it is fresh (see
    :func:`listing_key`), else a new one, which is kept; a failed listing leaves its
    target unsplit."""
    listings: dict[str, Listing] = {}
    kept = cached_listings(directory) if candidates else {}
    keys = {job.name: listing_key(job) for job in candidates}
    now = time.time()
    to_list = []
    for job in candidates:
        found = cached_listing(kept.get(job.name), keys[job.name], now)
        if found is None:
            to_list.append(job)
        else:
            listings[job.name] = found
            age = (now - found.listed_at) / 3600
            log.info("{}: sizes from the listing of {:.1f} h ago", job.name, age)
    if not to_list:
        return listings
    fresh = {}
    for name, outcome in run_listings(to_list, max_per_host, cancel).items():
        if isinstance(outcome, str):
            log.warning("{}: not split: {}", name, outcome)
            continue
        listings[name] = outcome
        fresh[name] = (keys[name], outcome)
        log.info(
            "{}: listed {} top-level directories, {} bytes in {:.2f}s",
            name,
            len(outcome.dirs),
            outcome.total,
            outcome.seconds,
        )
    if fresh:
        keep_listings(directory, fresh)
    return listings


def _stream_line(
    jobs: Sequence[Job],
    wanted: Mapping[str, int | str | None],
    weights: Mapping[str, float | None],
    listings: Mapping[str, Listing],
) -> dict[str, float]:
    """What the run will hold besides the "auto" targets, for :func:`auto_loads`: a
    target with split = N as its N even parts, every other job whole (a job of unknown
    weight as the average)."""
    known = [w for w in weights.values() if w is not None]
    average = sum(known) / len(known) if known else 0.0
    line: dict[str, float] = {}
    for job in jobs:
        weight = weights[job.name]
        weight = weight if weight is not None else average
        count = 1
        if job.name in listings and wanted[job.name] != "auto":
            count = min(part_count(wanted[job.name], len(listings[job.name].dirs))[0], MAX_PARTS)
            count = max(count, 1)
        for index in range(count):
            line[job.name if count == 1 else f"{job.name}\0{index}"] = weight / count
    return line


def _split_job(
    job: Job, listing: Listing, loads_wanted: int | list[float], why: str
) -> tuple[list[Job], DestLock | None]:
    """The job's parts for these wanted loads (a count, or the loads), and the dest
    lock the run holds for them; the job alone if it makes fewer than two parts, or
    (a sync, not a plan) if its dest's lock cannot be taken now."""
    count = len(loads_wanted) if isinstance(loads_wanted, list) else loads_wanted
    if count > MAX_PARTS:
        count, loads_wanted = MAX_PARTS, MAX_PARTS
    groups = balance(listing.dirs, loads_wanted, listing.other_bytes) if count > 1 else []
    if len(groups) < 2:
        log.info("{}: not split ({})", job.name, why)
        return [job], None
    lock = None
    if not job.plan:
        lock = _take_lock(job)
        if lock is None:
            log.info("{}: not split: its dest's lock is held or cannot be taken", job.name)
            return [job], None
    loads = [sum(listing.dirs[n] for n in group) for group in groups]
    loads[-1] += listing.other_bytes
    log.info(
        "{}: {} parts ({}), bytes per part: {}",
        job.name,
        len(groups),
        why,
        ", ".join(f"{load:,}" for load in loads),
    )
    return part_jobs(job, groups, loads), lock


def _take_lock(job: Job, wait: Callable[[float], None] = time.sleep) -> DestLock | None:
    """The target's dest lock if it is free now (a job the preflight marked ``unlocked``:
    a stand-in, as its file system cannot lock); None if another run holds it, or it
    cannot be taken now: then the target is not split, and its worker says why.

    "Now" is :func:`pdbsync.run.locks.take` with no patience: it still tries once more after
    one poll (``wait``), so another run's preflight probe does not unsplit the target."""
    if job.unlocked is not None:
        path = lock_path(job.resolved_dest or job.dest)
        return DestLock(path, os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    outcome = locks.take(
        job.resolved_dest or job.dest, job.name, 0.0, lambda: None, wait, lambda _event: None
    )
    return outcome.lock


def expected_weights(
    jobs: Sequence[Job], listings: Mapping[str, Listing], directory: Path
) -> dict[str, float | None]:
    """What each target weighs, in bytes: its listing, else its source size at the last
    successful sync, else its last duration at the run history's average byte rate.
    None: nothing is known (such targets start first: they may be the longest)."""
    from pdbsync.store import history as state

    try:
        sizes = state.last_sizes(directory)
        durations = state.last_durations(directory)
    except state.StateError:
        sizes, durations = {}, {}
    both = [n for n in sizes if durations.get(n)]
    rate = sum(sizes[n] for n in both) / sum(durations[n] for n in both) if both else None
    weights: dict[str, float | None] = {}
    for job in jobs:
        if job.name in listings:
            weights[job.name] = float(listings[job.name].total)
        elif job.name in sizes:
            weights[job.name] = float(sizes[job.name])
        elif job.name in durations and rate:
            weights[job.name] = durations[job.name] * rate
        else:
            weights[job.name] = None
    return weights
