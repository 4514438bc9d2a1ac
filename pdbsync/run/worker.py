"""The pool worker: runs one job's rsync and streams its output to the parent.

Each worker process owns at most one rsync child at a time. It reads rsync's stdout
and stderr together from one selector loop (no thread per pipe, no deadlock when one
pipe fills), turns its lines into events and sends them in batches over the shared
queue, so a verbose rsync is not slowed down by one queue message per line; runs of
plain output lines travel as lists of strings (:class:`~pdbsync.messages.OutputLines`),
not as a dict each. The target's result goes through the same queue after its last line.

Messages on the queue are the small types of :mod:`pdbsync.messages`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import random
import re
import select
import selectors
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from multiprocessing.queues import Queue
from typing import Any

from pdbsync.errors import EnvironmentProblem
from pdbsync.events import make_event, utc_now
from pdbsync.messages import (
    EventBatch,
    JobFinished,
    Message,
    OutputLines,
    RsyncStarted,
    WorkerStarted,
)
from pdbsync.report.summary import SyncResult
from pdbsync.report.throttle import Throttle
from pdbsync.rsync import argv as rsync_argv
from pdbsync.rsync import exits
from pdbsync.rsync import output as rsync_output
from pdbsync.rsync.lines import LineSplitter
from pdbsync.rsync.process import kill_group
from pdbsync.rsync.program import inspect_rsync
from pdbsync.run import locks
from pdbsync.run.jobs import Job
from pdbsync.run.parts import merge_stats
from pdbsync.run.plan_mode import plan_event, target_plan
from pdbsync.units import progress_text
from pdbsync.weekly import transfer as weekly_transfer
from pdbsync.weekly.plan import WEEKLY

#: Send a batch when it holds this many events (output lines count one each), or when it
#: is this old (seconds).
BATCH_EVENTS = 500
BATCH_SECONDS = 0.1
#: At most one progress event per target per this many seconds (the last always goes).
PROGRESS_INTERVAL = 0.25
#: How many trailing stderr lines explain a failure.
ERROR_LINES = 5
_READ_SIZE = 1 << 16
_SMALL_READ = 1 << 12
_PIPE_SIZE = 1 << 20
_GATHER_SECONDS = 0.005
#: stdout lines a plan drops: blank ones, and dry-run "created directory DEST" (it was not).
_PLAN_NOISE = re.compile(r"^\s*$|^created directory ")
_PR_SET_PDEATHSIG = 1

#: The signals that stop a run (the parent's handlers and the workers' share this list):
#: Slurm and ``timeout`` send SIGTERM, a closed terminal or ssh session SIGHUP, Ctrl-C
#: SIGINT, schedulers' early warnings SIGUSR1/SIGUSR2.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
#: After asking rsync to stop (SIGTERM to its process group), how long it gets to tidy
#: up (its partial file goes to the partial dir) before the group is SIGKILLed.
RSYNC_STOP_GRACE = 1.5

_queue: Queue | None = None
_prctl: Callable[..., int] | None = None
_parent_pid: int | None = None
#: The stop signal this worker received (sticky: a stopped worker starts no rsync again).
_stopped_by: str | None = None
#: The rsync this worker runs right now, for the signal handlers.
_rsync: subprocess.Popen[bytes] | None = None
#: Written to by the signal handler so a retry's wait ends at once (read end, write end).
_wakeup: tuple[int, int] | None = None
#: The lock on the current job's dest (pdbsync.run.locks), held from before its first rsync
#: until its result is sent.
_dest_lock: locks.DestLock | None = None


def _release_dest_lock() -> None:
    global _dest_lock
    if _dest_lock is not None:
        _dest_lock.release()
        _dest_lock = None


def init_worker(queue: Queue, parent_pid: int) -> None:
    """Pool initializer: keep the queue, tie this worker's life to the main process, and
    make a stop signal stop this worker's rsync rather than the worker.

    A stop signal that reaches every process of the run at once (Slurm signals the
    whole job, ``timeout`` and a closing terminal the whole process group) would
    otherwise kill idle and busy workers alike: the pool would fork replacements, and the
    targets would look like crashes. Instead a worker ends its rsync's whole process
    tree, reports the job, and waits to be taken down by the parent. SIGINT is ignored:
    Ctrl-C reaches the whole foreground group and the parent decides.
    """
    global _queue, _prctl, _parent_pid, _wakeup
    _queue = queue
    _parent_pid = parent_pid
    _wakeup = os.pipe()
    for fd in _wakeup:
        os.set_blocking(fd, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in STOP_SIGNALS:
        if signum != signal.SIGINT:
            signal.signal(signum, _on_stop_signal)
    signal.signal(signal.SIGALRM, _on_stop_grace_over)
    try:
        # The interpreter is linked against libc: no find_library (it runs ldconfig).
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        _prctl = None
    if _prctl is not None:
        # SIGTERM when the main process dies, however it dies (kill -9, the OOM killer).
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the line above
        os._exit(0)


def _parent_gone() -> bool:
    return _parent_pid is not None and os.getppid() != _parent_pid


def _on_stop_signal(signum: int, _frame: object) -> None:
    """Stop this worker's rsync (its whole process group), or leave if there is nothing
    to do and nobody to report to."""
    global _stopped_by
    if _stopped_by is None:
        _stopped_by = signal.Signals(signum).name
    if _wakeup is not None:
        with contextlib.suppress(OSError):
            os.write(_wakeup[1], b"!")
    if _rsync is not None and _rsync.returncode is None:
        kill_group(_rsync.pid, signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, RSYNC_STOP_GRACE)
    elif _parent_gone():
        os._exit(0)


def _on_stop_grace_over(_signum: int, _frame: object) -> None:
    """rsync did not stop in RSYNC_STOP_GRACE after SIGTERM: SIGKILL its whole group."""
    if _rsync is not None:
        kill_group(_rsync.pid, signal.SIGKILL)


def _die_with_parent(worker_pid: int) -> None:
    """In the rsync child, before exec: get SIGTERM when this worker dies, however it dies.

    A worker killed between the fork and the ``prctl`` sends no signal: the child then has
    another parent already, and exits instead of running an rsync nobody watches (the
    parent never learns its pid, so it could not stop it either).
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != worker_pid:
            os._exit(128 + signal.SIGTERM)


def _wait_unless_stopped(seconds: float) -> None:
    """Sleep ``seconds`` (a retry's backoff), but wake at once on a stop signal."""
    if _stopped_by is not None:
        return
    if _wakeup is None:
        time.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    while _stopped_by is None and (left := deadline - time.monotonic()) > 0:
        select.select([_wakeup[0]], [], [], left)
        with contextlib.suppress(BlockingIOError):
            os.read(_wakeup[0], 64)


def rsync_environment() -> dict[str, str]:
    """The environment for rsync: ours, with numbers printed the way the parsers expect."""
    env = dict(os.environ)
    ctype = env.pop("LC_ALL", None) or env.get("LC_CTYPE") or env.get("LANG")
    if ctype:
        env["LC_CTYPE"] = ctype
    env["LC_NUMERIC"] = "C"
    return env


class _Attempt:
    """Reads one rsync run's two pipes and turns the lines into batched events."""

    def __init__(self, job: Job, send: Callable[[Message], None]) -> None:
        self.job = job
        self.send = send
        self.batch: list[dict[str, Any] | OutputLines] = []
        self.batch_size = 0  # events in the batch, each output line counted
        self.batch_started = time.monotonic()
        # output lines not yet in the batch: all of one stream, read at out_ts
        self.out: list[str] = []
        self.out_stream = "stdout"
        self.out_ts = ""
        self.marks = {"part": job.part, "parts": job.parts} if job.parts else None
        self.stderr_head: list[str] = []  # the first lines often name the cause...
        self.stderr_tail: deque[str] = deque(maxlen=ERROR_LINES)  # ...the last its effect
        self.size_base = rsync_argv.size_base(job.argv)  # -h and -hh print sizes differently
        # only rsync's closing --stats block counts, not a motd that reads like one
        self.stats_block = rsync_output.StatsBlock(self.size_base)
        self.redraws: Throttle[tuple[str, str]] = Throttle(PROGRESS_INTERVAL)  # (line, ts)
        # What the transfer had done if it ends without its stats block (cancelled,
        # failed): the last redraw (its bytes), and the last one with a file count
        # (redraws in the middle of a file carry no xfr#). Kept as text, parsed once.
        self.last_redraw: str | None = None
        self.last_counted_redraw: str | None = None
        self.itemized = rsync_output.ItemizedCounts() if job.plan else None
        # quiet: rsync's stdout is read for its numbers but not shown (see options.quiet)
        self.quiet = bool(getattr(job.options, "quiet", False)) and not job.plan
        # a weekly job runs a few batches: their stats blocks are summed in its result
        # (and its Completed line), not shown one by one
        self.hide_stats = job.weekly
        # ...and their itemized lines (``-ii``) name the files the mirror has
        self.mirror_files: set[str] | None = set() if self.hide_stats else None

    def emit(self, event: dict[str, Any]) -> None:
        self._close_lines()  # the lines before it go first
        self._add(event, 1)

    def _add(self, item: dict[str, Any] | OutputLines, size: int) -> None:
        if not self.batch:
            self.batch_started = time.monotonic()
        self.batch.append(item)
        self.batch_size += size
        if self.batch_size >= BATCH_EVENTS:
            self.flush()

    def _close_lines(self) -> None:
        """Move the pending output lines into the batch, BATCH_EVENTS lines at most per
        message (a pipe read of short lines holds a thousand)."""
        lines = self.out
        if not lines:
            return
        self.out = []
        start = 0
        while start < len(lines):
            room = BATCH_EVENTS - self.batch_size
            piece = lines if start == 0 and len(lines) <= room else lines[start : start + room]
            start += len(piece)
            self._add(
                OutputLines(self.job.name, self.out_ts, self.out_stream, piece, self.marks),
                len(piece),
            )

    def flush(self) -> None:
        self._close_lines()
        if self.batch:
            self.send(EventBatch(self.batch))
            self.batch = []
            self.batch_size = 0

    def handle_lines(self, stream: str, raw_lines: list[bytes]) -> None:
        if not raw_lines:
            return
        ts = utc_now()  # one clock read per chunk, not per line
        # One decode per chunk: UTF-8 resynchronises at every \n, so this is the same as
        # decoding line by line (invalid bytes become U+FFFD either way).
        lines = b"\n".join(raw_lines).decode("utf-8", "replace").split("\n")
        self.out_ts, self.out_stream = ts, stream
        if stream == "stderr":
            self._stderr_lines(lines)
        else:
            self._stdout_lines(lines, ts)
        self._close_lines()

    def _stderr_lines(self, lines: list[str]) -> None:
        """Keep the non-blank stderr lines as output, and the first and last few to
        explain a failure."""
        kept = []
        for line in lines:
            if line.strip():  # rsync ends a progress line with a "\n" before an error
                kept.append(line)
                if len(self.stderr_head) < ERROR_LINES:
                    self.stderr_head.append(line)
                else:
                    self.stderr_tail.append(line)
        self.out = kept

    def _stdout_lines(self, lines: list[str], ts: str) -> None:
        """Sort stdout lines into the stats block, a plan's counts, progress redraws and
        plain output."""
        feed_stats = self.stats_block.feed  # every stdout line: a motd block must be left behind
        for line in lines:
            is_stats = feed_stats(line)
            if is_stats and self.hide_stats:
                continue
            if self.mirror_files is not None and (item := rsync_output.itemized_path(line)):
                if item[0] in "fL":
                    self.mirror_files.add(item[1])
                if self.itemized is not None:
                    self.itemized.feed(line)
                continue  # counted (a plan), not shown: -ii names every file
            if self.itemized is not None and self.itemized.feed(line):
                continue  # a plan counts itemized lines: a big tree has millions of them
            if (line[:1] == " " or line[:1].isdigit()) and rsync_output.is_progress(line):
                self._redraw(line, ts)
                continue
            if self.quiet or not line or line.isspace():
                continue  # a blank line is no event, and shows nothing
            if self.redraws.held is not None:
                self._release_final_redraw()
            if self.itemized is not None and (is_stats or _PLAN_NOISE.match(line)):
                continue  # the plan event says it all
            self.out.append(line)  # an output event, sent with its neighbours

    def _redraw(self, line: str, ts: str) -> None:
        self.last_redraw = line
        if "xfr#" in line:
            self.last_counted_redraw = line
        if not self.quiet:
            self.progress(line, ts)

    def _release_final_redraw(self) -> None:
        """rsync's final redraw goes out before the line that follows it (the ``--stats``
        block); an ordinary redraw stays held (with -v one comes after every file)."""
        held = self.redraws.held
        if held is not None and rsync_output.is_final_redraw_line(held[0]):
            self.emit_progress(*held)
            self.redraws.release()

    def stderr_kept(self) -> list[str]:
        """The first and last few stderr lines of this attempt."""
        return [*self.stderr_head, *self.stderr_tail]

    def progress(self, line: str, ts: str) -> None:
        """Send at most one redraw per PROGRESS_INTERVAL; hold the latest one.

        Only redraws that are sent get parsed: with ``-v`` rsync redraws after every
        file, and most of those are never shown.
        """
        if self.redraws.offer((line, ts)) is not None:
            self.emit_progress(line, ts)

    def emit_progress(self, line: str, ts: str) -> None:
        fields = rsync_output.parse_progress(line, self.size_base)
        if fields is not None:
            self.emit(make_event("progress", self.job.name, progress_text(fields), ts, **fields))

    def transferred_so_far(self) -> tuple[int, int]:
        """(files, bytes) this attempt had transferred, by its last progress redraws.

        For an rsync that ended without its closing ``--stats`` block (stopped, or
        failed half-way): the redraw's byte count includes the file in flight, its
        ``xfr#N`` counts whole files. No redraw at all means nothing was transferred.
        """
        last = rsync_output.parse_progress(self.last_redraw or "", self.size_base) or {}
        counted = rsync_output.parse_progress(self.last_counted_redraw or "", self.size_base) or {}
        return counted.get("files_transferred") or 0, last.get("bytes") or 0  # type: ignore[return-value]

    def run(self) -> int:
        """Run rsync to completion; its exit code (negative: killed by that signal).

        Returns only once rsync's whole process tree is gone: its pipes close when the
        last process holding them (rsync and the receiver it forks) exits.
        """
        global _rsync
        proc = subprocess.Popen(
            self.job.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=rsync_environment(),
            start_new_session=True,  # Ctrl-C reaches pdb-sync, which then stops rsync
            preexec_fn=partial(_die_with_parent, os.getpid()),
            pass_fds=_dest_lock_fds(),  # the dest lock lives as long as any rsync of it
        )
        _rsync = proc
        if _stopped_by is not None:  # the stop signal came while rsync was being started
            kill_group(proc.pid, signal.SIGTERM)
            signal.setitimer(signal.ITIMER_REAL, RSYNC_STOP_GRACE)
        self.send(RsyncStarted(self.job.key, proc.pid))
        try:
            self._read_until_closed(proc)
            code = proc.wait()
        finally:
            if proc.poll() is None:  # a bug in reading must not leave rsync writing alone
                kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            signal.setitimer(signal.ITIMER_REAL, 0)
            _rsync = None
            self.send(RsyncStarted(self.job.key, None))  # that pid is no longer ours to kill
        held = self.redraws.release()
        if held is not None:
            self.emit_progress(*held)
        self.flush()
        return code

    def _read_until_closed(self, proc: subprocess.Popen[bytes]) -> None:
        """Read both pipes in one selector loop until rsync closes them."""
        assert proc.stdout is not None and proc.stderr is not None
        splitters = {"stdout": LineSplitter(), "stderr": LineSplitter()}
        selector = selectors.DefaultSelector()
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            os.set_blocking(pipe.fileno(), False)
            _widen_pipe(pipe.fileno())
            selector.register(pipe.fileno(), selectors.EVENT_READ, stream)
        open_streams = 2
        try:
            while open_streams:
                wait = (
                    BATCH_SECONDS - (time.monotonic() - self.batch_started) if self.batch else None
                )
                for key, _ in selector.select(max(wait, 0.0) if wait is not None else None):
                    stream = key.data
                    try:
                        chunk = os.read(key.fd, _READ_SIZE)
                    except BlockingIOError:
                        continue
                    if chunk:
                        self.handle_lines(stream, splitters[stream].feed(chunk))
                        if len(chunk) < _SMALL_READ:
                            # rsync writes each line on its own; let a few gather
                            # rather than wake up once per line.
                            time.sleep(_GATHER_SECONDS)
                    else:
                        selector.unregister(key.fd)
                        open_streams -= 1
                        self.handle_lines(stream, splitters[stream].close())
                if self.batch and time.monotonic() - self.batch_started >= BATCH_SECONDS:
                    self.flush()
        finally:
            selector.close()
            proc.stdout.close()
            proc.stderr.close()


def _widen_pipe(fd: int) -> None:
    """Give the pipe room for a second or more of rsync's output (Linux: up to 1 MiB).

    With the default 64 KiB, a moment in which this worker is not scheduled fills the
    pipe and rsync, blocked on a write, stalls the whole transfer.
    """
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


def backoff_delay(attempt: int, fixed: float | None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: fixed, or 1, 2, 4, ... 30 + jitter."""
    if fixed is not None:
        return fixed
    base = min(2 ** (attempt - 1), 30)
    return base + random.uniform(0, base * 0.1)


def execute(job: Job, send: Callable[[Message], None]) -> SyncResult:
    """Run ``job`` with its retries, sending events through ``send``; return its result."""
    started_at = utc_now()
    started = time.monotonic()
    send(WorkerStarted(job.key, os.getpid()))
    send(EventBatch([_started_event(job, started_at)]))
    refused = _lock_dest(job, send, started_at, started)
    if refused is not None:
        return _with_update(refused, job)
    if job.weekly:
        return _with_update(_execute_weekly(job, send, started_at, started), job)
    tried = _attempts(job, send)
    duration = time.monotonic() - started
    job, code, runner = tried.job, tried.code, tried.runner
    stats = runner.stats_block.result(code) if runner is not None else {}
    files_transferred, bytes_transferred = _transferred(job, code, runner, stats)
    if job.plan and code == 0 and runner is not None and runner.itemized is not None:
        event = plan_event(job.name, target_plan(job, stats, runner.itemized))
        event.update(job.update.fields() if job.update is not None else {})
        send(EventBatch([event]))
    status, error = _outcome(tried)
    return _with_update(
        SyncResult(
            name=job.name,
            url=job.url,
            dest=str(job.dest),
            status=status,
            exit_code=code,
            exit_meaning=exits.exit_meaning(code),
            error=error,
            attempts=tried.attempts,
            started_at=started_at,
            finished_at=utc_now(),
            duration_s=round(duration, 3),
            files_transferred=files_transferred,
            bytes_transferred=bytes_transferred,
            stats={} if job.plan else stats,  # a dry run's stats are in the plan event
            mirror=job.mirror,
            mirror_reason=job.mirror_reason,
            unlocked=job.unlocked,
            attempt_log=tried.log,
        ),
        job,
    )


def _with_update(result: SyncResult, job: Job) -> SyncResult:
    """``result`` with a weekly target's update fields (pdbsync.weekly.plan.Update)."""
    if job.update is not None:
        for key, value in job.update.fields().items():
            setattr(result, key, value)
    return result


def _started_event(job: Job, started_at: str) -> dict[str, Any]:
    update = job.update.fields() if job.update is not None else {}
    if job.update is None:
        message = "Planning (dry run)..." if job.plan else "Starting sync..."
    else:
        message = _update_message(job)
    return make_event(
        "sync_started",
        job.name,
        message,
        started_at,
        url=job.url,
        dest=str(job.dest),
        argv=list(job.argv),
        pid=os.getpid(),
        **update,
    )


def _update_message(job: Job) -> str:
    """What a weekly target's run does, for people: the weeks and counts, or why full."""
    update = job.update
    assert update is not None
    verb = "Planning" if job.plan else "Starting"
    if update.mode != WEEKLY:
        return f"{verb} full sync ({update.reason})..."
    if not update.weeks:
        return f"{verb} weekly update: no new week since {update.newest}"
    counts = ", ".join(
        f"{kind} {update.counts.get(kind, 0)}" for kind in ("added", "modified", "obsolete")
    )
    weeks = update.weeks[0] if len(update.weeks) == 1 else f"{update.weeks[0]}..{update.weeks[-1]}"
    return f"{verb} weekly update: week {weeks} ({counts})..."


def _execute_weekly(
    job: Job, send: Callable[[Message], None], started_at: str, started: float
) -> SyncResult:
    """A weekly job (pdbsync.weekly.transfer): the changed entries' files in batches of
    ``-R`` arguments (each batch with the job's retries; its itemized lines say which
    files the mirror has), then, with ``delete`` on, the entries' files the mirror no
    longer has. Nothing is deleted unless every batch succeeded."""
    update = job.update
    assert update is not None
    layout = update.layout_rules
    problem = _prepare_dest(job)
    tried = _Tried(job)
    if problem is not None:
        tried.error = problem
        return _weekly_result(job, send, tried, {}, (started_at, started), [])
    commands = weekly_transfer.transfer_commands(
        job.command, job.url, layout, update.entries, _client_version(job.command.program)
    )
    runs, remote = _weekly_batches(job, commands, send)
    if (
        not remote
        and update.entries
        and weekly_transfer.packs(commands)
        and all(run.code == 0 for run in runs)
    ):
        # Nothing listed for a packed request: a daemon that does not split arguments
        # (not rsync's: rsync's always does) read each as one missing path. Asked again,
        # a path an argument, before an absence can delete anything.
        commands = weekly_transfer.transfer_commands(job.command, job.url, layout, update.entries)
        more, remote = _weekly_batches(job, commands, send)
        runs += more
    remote = weekly_transfer.owned(remote, layout, update.entries)
    stats = merge_stats(
        [run.runner.stats_block.result(run.code) for run in runs if run.runner is not None]
    )
    deleted: list[str] = []
    done = all(run.code == 0 for run in runs) and _stopped_by is None
    if done and job.options.delete and job.dest_moved() is None:
        stale = weekly_transfer.stale_files(
            job.resolved_dest or job.dest, layout, update.entries, remote
        )
        deleted = [str(path) for path in stale]
        if not job.plan:
            weekly_transfer.delete_stale(stale)
            stats["files_deleted"] = len(stale)
    if runs:
        tried.attempts = sum(run.attempts for run in runs)
        tried.code = runs[-1].code
        tried.runner = runs[-1].runner
        tried.error = runs[-1].error
    else:
        tried.code = 0  # nothing changed: nothing to transfer
    if _stopped_by is not None and tried.code == 0:
        tried.code = None  # stopped before the deletes: cancelled, and the week not applied
    return _weekly_result(job, send, tried, stats, (started_at, started), deleted, runs)


def _weekly_batches(
    job: Job, commands: list[rsync_argv.RsyncArgv], send: Callable[[Message], None]
) -> tuple[list[_Tried], set[str]]:
    """Run a weekly job's batches in order until one fails; their runs, and the files
    their itemized lines say the mirror has."""
    runs: list[_Tried] = []
    remote: set[str] = set()
    for command in commands:
        batch = _attempts(replace(job, command=command), send)
        runs.append(batch)
        if batch.code != 0:
            break
        if batch.runner is not None and batch.runner.mirror_files is not None:
            remote |= batch.runner.mirror_files
    return runs, remote


def _client_version(program: str) -> tuple[int, ...] | None:
    """The rsync client's version (remembered: no fork), None if it cannot be told."""
    try:
        return inspect_rsync(program).version
    except EnvironmentProblem:  # inspect_rsync's one failure: missing, unreadable, too old
        return None


def _weekly_result(
    job: Job,
    send: Callable[[Message], None],
    tried: _Tried,
    stats: dict[str, Any],
    start: tuple[str, float],
    deleted: list[str],
    runs: list[_Tried] | None = None,
) -> SyncResult:
    """The weekly job's result (its batches' counts summed) and, for a plan, its plan event."""
    started_at, started = start
    runs = runs or []
    if job.plan and tried.code == 0:
        counts = rsync_output.ItemizedCounts()
        for run in runs:
            if run.runner is not None and run.runner.itemized is not None:
                counts.created += run.runner.itemized.created
                counts.updated += run.runner.itemized.updated
        counts.deleted = len(deleted)
        counts.deletion_sample = deleted[:10]
        plan = target_plan(job, stats, counts)
        event = plan_event(job.name, plan)
        event.update(job.update.fields() if job.update is not None else {})
        send(EventBatch([event]))
    files = [
        run.runner.stats_block.result(run.code).get("files_transferred")
        for run in runs
        if run.runner is not None
    ]
    sizes = [
        run.runner.stats_block.result(run.code).get("transferred_size")
        for run in runs
        if run.runner is not None
    ]
    status, error = _outcome(tried)
    return SyncResult(
        name=job.name,
        url=job.url,
        dest=str(job.dest),
        status=status,
        exit_code=tried.code,
        exit_meaning=exits.exit_meaning(tried.code),
        error=error,
        attempts=tried.attempts,
        started_at=started_at,
        finished_at=utc_now(),
        duration_s=round(time.monotonic() - started, 3),
        files_transferred=None if job.plan else sum(f or 0 for f in files),
        bytes_transferred=None if job.plan else sum(b or 0 for b in sizes),
        stats={} if job.plan else stats,
        mirror=job.mirror,
        mirror_reason=job.mirror_reason,
        unlocked=job.unlocked,
        attempt_log=_batches_log(runs) or None,
    )


def _batches_log(runs: list[_Tried]) -> list[dict[str, Any]]:
    """A weekly job's attempts over all its batches, numbered in order (the report draws
    one bar each)."""
    entries = [dict(entry) for run in runs for entry in run.log]
    for number, entry in enumerate(entries, 1):
        entry["attempt"] = number
    return entries


@dataclass
class _Tried:
    """What a job's attempts came to: the job as last run (another mirror after a
    connection failure), how many attempts started, the last exit code and reader, and
    why no rsync ran or went on (None: rsync's exit code says it)."""

    job: Job
    attempts: int = 0
    code: int | None = None
    runner: _Attempt | None = None
    error: str | None = None
    #: one entry per attempt, for the report's timeline (SyncResult.attempt_log)
    log: list[dict[str, Any]] = field(default_factory=list)


def _attempts(job: Job, send: Callable[[Message], None]) -> _Tried:
    """Run rsync until it succeeds, fails for good, runs out of retries or is stopped;
    a connection failure moves to the next fallback mirror for one more attempt."""
    tried = _Tried(job)
    max_attempts = job.retry.retries + 1
    while tried.attempts < max_attempts and _stopped_by is None:  # a stopped worker starts none
        tried.attempts += 1
        runner = tried.runner = _Attempt(tried.job, send)
        entry = _attempt_entry(tried)
        problem = _prepare_dest(tried.job)
        if problem is not None:
            tried.code, tried.error = None, problem
            _attempt_ended(entry, tried)
            break
        try:
            tried.code = runner.run()
        except OSError as exc:
            tried.code, tried.error = None, f"cannot start rsync: {exc}"
            _attempt_ended(entry, tried)
            break
        _attempt_ended(entry, tried)
        switched = tried.job.next_mirror(tried.code, runner.stderr_kept())
        if switched is not None:  # could not connect: the next best mirror, one more attempt
            tried.job, max_attempts = switched, max_attempts + 1
        elif (
            tried.code == 0
            or tried.attempts >= max_attempts
            or not exits.is_transient(tried.code, runner.stderr_kept())
        ):
            break
        delay = backoff_delay(tried.attempts, tried.job.retry.delay)
        send(EventBatch([_retry_event(tried, max_attempts, delay)]))
        _wait_unless_stopped(delay)
    return tried


def _attempt_entry(tried: _Tried) -> dict[str, Any]:
    """Start the log entry of the attempt ``tried`` is at: when it started (the report
    draws one timeline bar per attempt, and the gaps between them are the retries' waits)."""
    entry: dict[str, Any] = {
        "attempt": tried.attempts,
        "started_at": utc_now(),
        "finished_at": None,
        "exit_code": None,
        "bytes_transferred": None,
    }
    tried.log.append(entry)
    return entry


def _attempt_ended(entry: dict[str, Any], tried: _Tried) -> None:
    """Close the attempt's log entry: when it ended, rsync's exit code, what it moved."""
    entry["finished_at"] = utc_now()
    entry["exit_code"] = tried.code
    runner = tried.runner
    if runner is not None and tried.code is not None and not tried.job.plan:
        stats = runner.stats_block.result(tried.code)
        entry["bytes_transferred"] = _transferred(tried.job, tried.code, runner, stats)[1]


def _prepare_dest(job: Job) -> str | None:
    """Create the dest (not for a plan, which changes nothing on disk); why rsync must
    not start, if it cannot be created or no longer resolves where it did. Where the
    dest resolves is checked before creating it and again after: a link swapped in
    since planning must not redirect mkdir's or rsync's writes."""
    moved = job.dest_moved()
    if moved is None and not job.plan:
        try:
            (job.resolved_dest or job.dest).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create destination {job.dest}: {exc.strerror}"
        moved = job.dest_moved()
    return moved


def _retry_event(tried: _Tried, max_attempts: int, delay: float) -> dict[str, Any]:
    meaning = exits.exit_meaning(tried.code)
    return make_event(
        "retry",
        tried.job.name,
        f"Retry {tried.attempts}/{max_attempts - 1} after {delay:.0f}s "
        f"(exit {tried.code}: {meaning})",
        attempt=tried.attempts + 1,
        max_attempts=max_attempts,
        delay_s=round(delay, 3),
        exit_code=tried.code,
        exit_meaning=meaning,
        url=tried.job.url,
        mirror=tried.job.mirror,
    )


def _outcome(tried: _Tried) -> tuple[str, str | None]:
    """The job's status and error: the parent names a stop's cause, this says what
    happened here."""
    if tried.code == 0:
        return "success", None
    if _stopped_by is not None:
        if tried.attempts:
            return "cancelled", f"rsync stopped by {_stopped_by}"
        return "cancelled", f"not started: {_stopped_by}"
    error = tried.error
    if error is None and tried.runner is not None:
        error = exits.failure_reason(tried.runner.stderr_kept()) or exits.exit_meaning(tried.code)
    return "failed", error


def _transferred(
    job: Job, code: int | None, runner: _Attempt | None, stats: dict[str, object]
) -> tuple[int | None, int | None]:
    """(files, bytes) the target's last attempt transferred, for its result.

    From rsync's closing ``--stats`` block when it printed one; otherwise (stopped,
    failed half-way) from its last progress redraws, so a cancelled target still says
    what it had done. ``None`` only for what never ran rsync, and for a plan, which
    transfers nothing (what it would transfer is in its plan event).
    """
    if job.plan or runner is None or code is None:
        return None, None
    if "files_transferred" in stats:
        return stats["files_transferred"], stats.get("transferred_size")  # type: ignore[return-value]
    return runner.transferred_so_far()


def _dest_lock_fds() -> tuple[int, ...]:
    return () if _dest_lock is None else (_dest_lock.fd,)


def _lock_dest(
    job: Job, send: Callable[[Message], None], started_at: str, started: float
) -> SyncResult | None:
    """Take the lock on ``job.dest`` (pdbsync.run.locks) before any rsync of it starts; the
    job's result if it never gets it (``--lock-timeout``, or a stop signal while
    waiting, or a lock that cannot be taken: ``failed``). A plan writes nothing and
    takes no lock; a job the run's preflight marked ``unlocked`` runs without one."""
    global _dest_lock
    if job.plan or job.parts:  # a split target's lock is held by the parent (pdbsync.split.parts)
        return None
    if job.unlocked is not None:  # the file system cannot lock: warned once, before the run
        return None
    outcome = locks.take(
        job.resolved_dest or job.dest,
        job.name,
        job.lock_timeout,
        stopped=lambda: _stopped_by,
        wait=_wait_unless_stopped,
        emit=lambda event: send(EventBatch([event])),
    )
    _dest_lock = outcome.lock
    if outcome.status is None:
        return None
    result = SyncResult.without_outcome(job, outcome.status, outcome.reason)
    result.started_at = started_at
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def run_job(job: Job) -> None:
    """Pool entry point: run ``job`` and send its result; never raises into the pool."""
    assert _queue is not None, "init_worker was not called"
    send = _queue.put if not job.parts else _part_sender(_queue.put, job)
    try:
        result = execute(job, send)
    except Exception as exc:  # a bug must fail this target, not hang the run
        result = SyncResult.without_outcome(job, "failed", f"internal error in worker: {exc!r}")
    finally:
        _release_dest_lock()
    if _parent_gone():  # nobody left to report to (kill -9 of pdb-sync): rsync is gone too
        os._exit(0)
    send(JobFinished(job.key, result.to_dict()))


def _part_sender(send: Callable[[Message], None], job: Job) -> Callable[[Message], None]:
    """``send`` that marks every event of a split target's part with ``part``/``parts``
    (the target's ``name`` stays, so consumers group parts under their target)."""
    marks = {"part": job.part, "parts": job.parts}

    def send_part(message: Message) -> None:
        if isinstance(message, EventBatch):
            for event in message.events:
                if isinstance(event, dict):  # OutputLines carry their marks already
                    event.update(marks)
        send(message)

    return send_part
