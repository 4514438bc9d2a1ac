"""The least the fixed design can cost: a reference row for scripts/bench.py.

    echo URL DEST | python scripts/pool_floor.py [--preload MODULE,...] JOBS RSYNC_FLAG...

One rsync per input line, each in a ``multiprocessing.Pool`` worker (JOBS of them, fork
start); every output line becomes a JSON event with the target's name, sent over a
``multiprocessing.Queue`` to the parent, which prints ``[name] line``. That is the shape
docs/architecture.md fixes, and nothing else: no config, no checks of the paths, no
locks, no retries, no throttling, no summary and no schema. Where pdb-sync is slower than
GNU parallel, this row tells how much of the gap the design's shape itself costs (Python,
the pool, the queue) and how much is pdb-sync's own work on top of it.

``--preload`` imports the named modules before the pool starts, as pdb-sync's parent
does before it forks: the floor plus what importing pdb-sync's code costs, and nothing
of what that code then does.

A redraw of ``--info=progress2`` (``\\r`` without ``\\n``) is kept only as the last redraw
before each newline: the events a throttled renderer would end up showing, at no cost.

It is a floor for the re-sync row only. In a fresh copy rsync redraws its progress line
thousands of times a second, and a reader that wakes on every write, as this one does,
costs more than pdb-sync's worker, which lets writes gather between reads: measured
x1.26 of GNU parallel there, against pdb-sync's x1.11.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import subprocess
import sys
from multiprocessing.queues import Queue

import orjson

_events: Queue | None = None


def _init(events: Queue) -> None:
    global _events
    _events = events


def _send(name: str, **fields: object) -> None:
    assert _events is not None
    _events.put(orjson.dumps({"target": name, **fields}))


def transfer(job: tuple[str, str, list[str]]) -> int:
    """Run one rsync, sending each of its lines as an event; return its exit code."""
    url, dest, flags = job
    name = os.path.basename(dest.rstrip("/"))
    proc = subprocess.Popen(
        ["rsync", *flags, url, dest], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    pending = b""
    while chunk := os.read(proc.stdout.fileno(), 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            _send(name, line=line.rsplit(b"\r", 1)[-1].decode(errors="replace"))
    if pending:
        _send(name, line=pending.rsplit(b"\r", 1)[-1].decode(errors="replace"))
    code = proc.wait()
    _send(name, exit_code=code)
    return code


def main() -> int:
    args = sys.argv[1:]
    if args[0] == "--preload":
        for module in args[1].split(","):
            importlib.import_module(module)
        args = args[2:]
    jobs, flags = int(args[0]), args[1:]
    work = [(*line.split(" ", 1), flags) for line in sys.stdin.read().splitlines() if line]
    context = multiprocessing.get_context("fork")
    events: Queue = context.Queue()
    with context.Pool(jobs, initializer=_init, initargs=(events,)) as pool:
        result = pool.map_async(transfer, work)
        finished = 0
        out = sys.stdout
        while finished < len(work):
            event = orjson.loads(events.get())
            if "exit_code" in event:
                finished += 1
            else:
                out.write(f"[{event['target']}] {event['line']}\n")
        codes = result.get()
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
