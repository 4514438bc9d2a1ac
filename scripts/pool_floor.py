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
before each newline: the events a throttled renderer would end up showing.

It reads rsync's pipe by pdb-sync's worker's rule: after a read of less than 4 KiB it
waits 5 ms, so that rsync's writes (one per line or redraw) gather instead of waking the
reader one by one. Without that rule a fresh copy measured x1.05 of GNU parallel, and
x0.97 with it, in the same A/B.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import subprocess
import sys
import time
from multiprocessing.queues import Queue

import orjson

_events: Queue | None = None


def _init(events: Queue) -> None:
    global _events
    _events = events


def _send(name: str, **fields: object) -> None:
    assert _events is not None
    _events.put(orjson.dumps({"target": name, **fields}))


def last_redraw(line: bytes) -> bytes:
    """What is left of ``line`` on a terminal: the text after its last ``\\r``."""
    return line[line.rfind(b"\r") + 1 :]


def transfer(job: tuple[str, str, list[str]]) -> int:
    """Run one rsync, sending each of its lines as an event; return its exit code
    (128 + N if a signal N killed it). The last event of a target is its exit code, sent
    even if this raises, so the parent never waits for it in vain."""
    url, dest, flags = job
    name = os.path.basename(dest.rstrip("/"))
    code = 127  # rsync could not be started
    try:
        proc = subprocess.Popen(
            ["rsync", *flags, url, dest], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        pending = b""
        while chunk := os.read(proc.stdout.fileno(), 1 << 16):
            if len(chunk) < 1 << 12:
                time.sleep(0.005)
            *lines, pending = (pending + chunk).split(b"\n")
            # A redraw is overwritten by the next one: keep only the latest, or a fresh
            # copy's megabytes of redraws without a newline are joined again and again.
            pending = last_redraw(pending)
            for line in lines:
                _send(name, line=last_redraw(line).decode(errors="replace"))
        if pending:
            _send(name, line=pending.decode(errors="replace"))
        code = proc.wait()
        code = code if code >= 0 else 128 - code
        return code
    finally:
        _send(name, exit_code=code)


def main() -> int:
    args = sys.argv[1:]
    if args[0] == "--preload":
        for module in args[1].split(","):
            importlib.import_module(module)
        args = args[2:]
    jobs, flags = int(args[0]), args[1:]
    work = []
    for line in sys.stdin.read().splitlines():
        url, space, dest = line.partition(" ")
        if not space or not dest:
            sys.exit(f"pool_floor: input line {line!r}: expected 'URL DEST'")
        work.append((url, dest, flags))
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
