"""What pdb-sync remembers between runs: the run history and each target's latest state.

Cron jobs, monitors and (later) the scheduler ask questions a single summary cannot
answer: when did ``mmcif`` last succeed, how long does it usually take, how big is it.
Every sync and plan run is recorded here, under ``$PDB_SYNC_STATE_DIR``, else
``$XDG_STATE_HOME/pdb-sync``, else ``~/.local/state/pdb-sync``:

- ``history.jsonl``: one compact record per run (:func:`run_record`), appended. Bounded:
  when it grows past :data:`MAX_HISTORY_BYTES` it is compacted to the newest records
  that fit in half of that, written to a temp file and renamed (pdbsync.outputs), so a
  crash leaves either the old or the new file, never a mix.
- ``targets.json``: per target, its last sync, last success, last failure, last plan
  and running totals, replaced atomically after every run. It survives the history's
  compaction (a target that failed for a month still knows its last success) and is
  rebuilt from the history when missing or unreadable.
- ``lock``: every writer holds ``flock`` on it, so concurrent runs (two cron jobs, a
  manual run beside a timer) append and compact one after the other. Readers take no
  lock: both files change only by append (a torn last line is skipped) or by rename.

A crash in the middle of an append leaves a last line without its newline; readers skip
it and the next writer ends it before appending. Nothing here prints: failures raise
:class:`StateError`, and the command line turns a failed record into one warning line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections import ChainMap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from pdbsync import __version__, outputs
from pdbsync.errors import ExitCode, PdbSyncError

#: Version of the records in ``history.jsonl`` and of ``targets.json``.
STATE_VERSION = 1
HISTORY_FILE = "history.jsonl"
INDEX_FILE = "targets.json"
LOCK_FILE = "lock"
#: Past this size the history is compacted to the newest records in half of it (about
#: 4,000 runs of 4 targets; a daily cron job keeps years).
MAX_HISTORY_BYTES = 4 * 1024 * 1024
#: ``targets.json`` keeps at most this many targets (the most recently run ones).
MAX_INDEX_TARGETS = 1000
#: How long a writer waits for another run's lock before giving up (it holds it for
#: milliseconds; a longer wait means a hung process, and a run must not hang on it).
LOCK_TIMEOUT_S = 10.0
KINDS = ("sync", "plan")

#: Per-target fields a sync record keeps from the summary's result.
_SYNC_FIELDS = (
    "name",
    "status",
    "exit_code",
    "exit_meaning",
    "error",
    "attempts",
    "started_at",
    "finished_at",
    "duration_s",
    "files_transferred",
    "bytes_transferred",
)
#: ... and from its ``stats``: the source's size is what schedulers weigh targets by.
_SYNC_STATS = ("files_total", "total_size", "files_created", "files_deleted")
#: Per-target fields a plan record keeps from the plan summary.
_PLAN_FIELDS = (
    "name",
    "status",
    "exit_code",
    "exit_meaning",
    "error",
    "duration_s",
    "files_total",
    "total_size",
    "to_create",
    "to_update",
    "to_delete",
    "bytes_to_transfer",
)


class StateError(PdbSyncError):
    """The state directory cannot be read or written (exit 2 for ``status``/``history``;
    a run that cannot record itself only warns)."""

    exit_code = ExitCode.USAGE


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the state lives: ``PDB_SYNC_STATE_DIR``, ``$XDG_STATE_HOME/pdb-sync``, or
    ``~/.local/state/pdb-sync`` (the XDG default). ``environ`` is looked up first, then
    the process environment, so a command's environment wins where it says something.
    """
    env: Mapping[str, str] = ChainMap(dict(environ or {}), os.environ)
    if env.get("PDB_SYNC_STATE_DIR"):
        return Path(env["PDB_SYNC_STATE_DIR"]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]).expanduser() / "pdb-sync"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".local" / "state" / "pdb-sync"


# -- records -----------------------------------------------------------------------------


def run_record(summary: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The history record of one run: its outcome and, per target, the numbers that
    matter later (never the whole summary: rsync's full stats would bloat the history).

    ``summary`` is ``Summary.to_dict()`` (``kind="sync"``) or ``PlanSummary.to_dict()``
    (``kind="plan"``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "sync":
        targets = []
        for result in summary["results"]:
            entry = {key: result.get(key) for key in _SYNC_FIELDS}
            entry.update({key: result.get("stats", {}).get(key) for key in _SYNC_STATS})
            targets.append(entry)
    else:
        targets = [{key: target.get(key) for key in _PLAN_FIELDS} for target in summary["targets"]]
        for entry in targets:  # a plan's targets carry no times of their own
            entry["finished_at"] = summary["finished_at"]
    return {
        "v": STATE_VERSION,
        "kind": kind,
        "version": summary.get("version", __version__),
        "started_at": summary["started_at"],
        "finished_at": summary["finished_at"],
        "duration_s": summary["timings"]["total_s"],
        "exit_code": summary["exit_code"],
        "interrupted": summary.get("interrupted"),
        "parallel": summary.get("parallel"),
        # where it ran; a shard's run never weighs the next split (pdbsync.shards)
        "slurm": summary.get("slurm"),
        "shard": {key: shard[key] for key in ("index", "count")}
        if (shard := summary.get("shard"))
        else None,
        "targets": targets,
    }


def record_run(
    summary: Mapping[str, Any], kind: str, directory: Path | None = None
) -> dict[str, Any]:
    """Append the run to the history and update ``targets.json``; returns the index.

    Holds the lock for the whole update, so concurrent runs never interleave bytes or
    lose each other's records. Raises :class:`StateError` (one line) on any failure.
    """
    directory = directory if directory is not None else state_dir()
    record = run_record(summary, kind)
    line = orjson.dumps(record) + b"\n"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory):
            history = directory / HISTORY_FILE
            _append(history, line)
            index = _read_index(directory)
            if index is None:  # first run, or targets.json lost: the history has it all
                index = _build_index(_read_records(history))
            else:
                _apply(index, record)
            _write(directory / INDEX_FILE, orjson.dumps(index, option=orjson.OPT_INDENT_2))
            if history.stat().st_size > MAX_HISTORY_BYTES:
                _compact(history)
    except StateError:
        raise
    except PdbSyncError as exc:  # from pdbsync.outputs, already "state PATH: ..."
        raise StateError(exc.message) from None
    except OSError as exc:
        raise StateError(f"state {directory}: {exc.strerror or exc}") from None
    return index


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (FileNotFoundError if there
    is none).

    A FIFO, device or directory where a state file belongs is refused with StateError,
    not read: opening a FIFO for reading waits for a writer, and a run must never hang
    on its own bookkeeping. O_NONBLOCK makes the open return at once; the check follows.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StateError(f"state {path}: not a regular file")
    return os.fdopen(fd, "rb")


def read_file(path: Path) -> bytes:
    """The bytes of state file ``path``, by the rules of :func:`open_regular`."""
    with open_regular(path) as stream:
        return stream.read()


def read_cache(path: Path) -> str | None:
    """The text of cache file ``path`` in the state dir (``valid-configs``,
    ``rsync-version``): empty when it is missing or unreadable, None when it is not a
    regular file, which :func:`write_cache` must then not be asked to write (a FIFO
    would make the write wait)."""
    try:
        return read_file(path).decode()
    except StateError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""


def write_cache(path: Path, text: str) -> None:
    """Best effort: a cache that cannot be written only costs the next run its work."""
    with contextlib.suppress(outputs.OutputWriteError):
        outputs.write_file(path, text.encode())


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateError(
                        f"state {directory}: another pdb-sync held {LOCK_FILE} for "
                        f"{LOCK_TIMEOUT_S:g} s"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _append(history: Path, line: bytes) -> None:
    """Append one record; first end a line a crashed writer left unfinished."""
    with contextlib.suppress(FileNotFoundError), open_regular(history) as existing:
        size = existing.seek(0, os.SEEK_END)
        if size and existing.seek(size - 1) >= 0 and existing.read(1) != b"\n":
            line = b"\n" + line
    with outputs.open_for_append(history, "state") as stream:
        stream.write(line)
        os.fsync(stream.fileno())


def _write(path: Path, payload: bytes) -> None:
    outputs.write_file(path, payload + b"\n", label=f"state {path}")


def _compact(history: Path) -> None:
    """Keep the newest records that fit in half the bound; atomic replace."""
    lines = [line for line in read_file(history).split(b"\n") if _parse(line) is not None]
    kept: list[bytes] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > MAX_HISTORY_BYTES // 2:
            break
        kept.append(line)
    payload = b"".join(line + b"\n" for line in reversed(kept))
    outputs.write_file(history, payload, label=f"state {history}")


# -- the per-target index ----------------------------------------------------------------


def _empty_target() -> dict[str, Any]:
    return {
        "last_run": None,
        "last_success": None,
        "last_failure": None,
        "last_plan": None,
        "runs": 0,
        "files_transferred_total": 0,
        "bytes_transferred_total": 0,
    }


def _apply(index: dict[str, Any], record: Mapping[str, Any]) -> None:
    """Fold one run record into the index (in place)."""
    targets = index.setdefault("targets", {})
    for entry in record["targets"]:
        state = targets.setdefault(entry["name"], _empty_target())
        stamped = {**entry, "kind": record["kind"], "run_started_at": record["started_at"]}
        if record["kind"] == "plan":
            state["last_plan"] = stamped
            continue
        state["last_run"] = stamped
        state["runs"] += 1
        state["files_transferred_total"] += entry.get("files_transferred") or 0
        state["bytes_transferred_total"] += entry.get("bytes_transferred") or 0
        if entry["status"] == "success":
            state["last_success"] = stamped
        elif entry["status"] == "failed":
            state["last_failure"] = stamped
    if len(targets) > MAX_INDEX_TARGETS:
        newest = sorted(targets, key=lambda name: _last_activity(targets[name]), reverse=True)
        for name in newest[MAX_INDEX_TARGETS:]:
            del targets[name]
    index["v"] = STATE_VERSION
    index["updated_at"] = record["finished_at"]


def _last_activity(state: Mapping[str, Any]) -> str:
    stamps = [(state.get(key) or {}).get("finished_at") or "" for key in ("last_run", "last_plan")]
    return max(stamps)


def _build_index(records: list[dict[str, Any]]) -> dict[str, Any]:
    index: dict[str, Any] = {"v": STATE_VERSION, "targets": {}, "updated_at": None}
    for record in records:
        _apply(index, record)
    return index


def _read_index(directory: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(read_file(directory / INDEX_FILE))
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError:
        return None  # damaged by hand or by a disk: rebuilt from the history
    if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
        return None
    return data


# -- reading ----------------------------------------------------------------------------


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # the torn last line of a crashed writer
    if not isinstance(record, dict) or record.get("v") != STATE_VERSION:
        return None
    return record


def _read_records(history: Path) -> list[dict[str, Any]]:
    try:
        data = read_file(history)
    except FileNotFoundError:
        return []
    return [record for line in data.split(b"\n") if (record := _parse(line)) is not None]


def _reading(directory: Path | None) -> Path:
    return directory if directory is not None else state_dir()


def last_runs(
    limit: int | None = None, directory: Path | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    """Run records (:func:`run_record`), newest first; ``limit`` None or 0 means all."""
    try:
        records = _read_records(_reading(directory) / HISTORY_FILE)
    except OSError as exc:
        raise StateError(f"state {_reading(directory)}: {exc.strerror or exc}") from None
    if kind is not None:
        records = [record for record in records if record["kind"] == kind]
    records.reverse()
    return records[:limit] if limit else records


def target_history(
    name: str, limit: int | None = None, directory: Path | None = None
) -> list[dict[str, Any]]:
    """One target's entries across runs, newest first, each with ``kind`` and
    ``run_started_at`` of its run (only as far back as the bounded history goes)."""
    entries = []
    for record in last_runs(directory=directory):
        for entry in record["targets"]:
            if entry["name"] == name:
                entries.append(
                    {**entry, "kind": record["kind"], "run_started_at": record["started_at"]}
                )
    return entries[:limit] if limit else entries


def target_states(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per target: ``last_run``, ``last_success``, ``last_failure``, ``last_plan`` (each
    a target entry or None), ``runs`` and the transfer totals; {} before the first run."""
    where = _reading(directory)
    try:
        index = _read_index(where)
        if index is None:
            index = _build_index(_read_records(where / HISTORY_FILE))
    except OSError as exc:
        raise StateError(f"state {where}: {exc.strerror or exc}") from None
    return index.get("targets", {})


def last_durations(directory: Path | None = None) -> dict[str, float]:
    """Seconds each target's last successful sync took (for longest-first scheduling)."""
    return {
        name: state["last_success"]["duration_s"]
        for name, state in target_states(directory).items()
        if state.get("last_success") and state["last_success"].get("duration_s") is not None
    }


def last_sizes(directory: Path | None = None) -> dict[str, int]:
    """Each target's source size in bytes (rsync's "Total file size"), from its last
    successful sync, else its last plan; targets with neither are left out."""
    sizes = {}
    for name, state in target_states(directory).items():
        for key in ("last_success", "last_plan"):
            entry = state.get(key)
            if entry and entry.get("total_size") is not None:
                sizes[name] = entry["total_size"]
                break
    return sizes
