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

A record of another shape (hand-edited, another pdb-sync's, a disk's damage) is skipped
with one warning (pdbsync.log) naming the file and line, never a crash: readers index
these records directly, so each is checked against the shape :func:`run_record` writes.
Before a compaction or a rewrite of ``targets.json`` would drop such a record, the file's
bytes are kept beside it as ``NAME.bad-STAMP`` and the warning says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import time
from collections import ChainMap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from pdbsync import __version__, outputs
from pdbsync.errors import ExitCode, PdbSyncError
from pdbsync.times import is_utc_stamp

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
            if result.get("mode"):  # a weekly target's run: full or weekly (optional field)
                entry["mode"] = result["mode"]
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
        # where it ran; a shard's run never weighs the next split (pdbsync.batch.shards)
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
            loaded = _load_index(directory)
            if loaded.bad:  # the rewrite below drops them: keep the file's bytes first
                aside = _keep_aside(directory / INDEX_FILE, loaded.raw)
                _warn_bad(directory / INDEX_FILE, loaded.bad, aside)
            if loaded.index is not None:
                _apply(loaded.index, record)
            index = _repaired(loaded, history)  # what is rebuilt has this run in it
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
    """Keep the newest records that fit in half the bound; atomic replace. Records of
    another shape would be dropped: the whole file is kept aside first."""
    data = read_file(history)
    scanned = _scan(data)
    if scanned.bad:
        _warn_bad(history, scanned.bad, _keep_aside(history, data))
    lines = scanned.lines
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
            if entry.get("mode") != "weekly":  # what a full walk of the tree costs
                state["last_full_success"] = stamped
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


@dataclass
class _LoadedIndex:
    """``targets.json`` as read: its good part (None: missing or unusable as a whole),
    the bad parts as (line, problem) with the names of the targets they were, and the
    file's bytes (to keep aside before a rewrite drops the bad parts)."""

    index: dict[str, Any] | None
    bad: list[tuple[int, str]] = field(default_factory=list)
    bad_targets: list[str] = field(default_factory=list)
    raw: bytes = b""


def _load_index(directory: Path) -> _LoadedIndex:
    path = directory / INDEX_FILE
    try:
        raw = read_file(path)
    except FileNotFoundError:
        return _LoadedIndex(None)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # damaged by hand or by a disk: rebuilt
        return _LoadedIndex(None, [(exc.lineno, f"not JSON ({exc.msg})")], raw=raw)
    problem = _index_problem(data)
    if problem is not None:
        key, what = problem
        return _LoadedIndex(None, [(_index_line(raw, key), what)], raw=raw)
    loaded = _LoadedIndex(data, raw=raw)
    for name, target in list(data["targets"].items()):
        what = _target_state_problem(target)
        if what is not None:
            loaded.bad.append((_index_line(raw, "targets", name), f"target {name!r}: {what}"))
            loaded.bad_targets.append(name)
            del data["targets"][name]
    return loaded


def _repaired(loaded: _LoadedIndex, history: Path, quiet: bool = False) -> dict[str, Any]:
    """The index with what ``targets.json`` lacks rebuilt from the history: all of it
    when the file is missing or unusable, else the targets whose entries were bad."""
    if loaded.index is not None and not loaded.bad_targets:
        return loaded.index
    built = _build_index(_read_records(history, quiet))
    if loaded.index is None:
        return built
    for name in loaded.bad_targets:
        if name in built["targets"]:
            loaded.index["targets"][name] = built["targets"][name]
    return loaded.index


def _read_index(directory: Path, quiet: bool = False) -> dict[str, Any]:
    """The per-target index, repaired from the history where ``targets.json`` is
    missing or bad (one warning unless ``quiet``); nothing is written."""
    loaded = _load_index(directory)
    if loaded.bad and not quiet:
        _warn_bad(directory / INDEX_FILE, loaded.bad)
    return _repaired(loaded, directory / HISTORY_FILE, quiet)


# -- the shape of a record -----------------------------------------------------------------

#: How readers use each field of a target entry (any other field holds a number).
_ENTRY_TYPES = {
    "name": "name",
    "status": "name",
    "kind": "kind",
    "exit_code": "int",
    "attempts": "int",
    "exit_meaning": "text",
    "error": "text",
    "started_at": "time",
    "finished_at": "time",
    "run_started_at": "time",
}


def _value_problem(value: Any, expected: str) -> str | None:
    """Why ``value`` is not of the ``expected`` type (:data:`_ENTRY_TYPES`), or None.

    Only "name" and "kind" must be there: every other field may be null."""
    if value is None:
        return "is missing" if expected in ("name", "kind") else None
    if expected == "name":
        return None if isinstance(value, str) and value else "is not a non-empty string"
    if expected == "kind":
        return None if value in KINDS else f"is not one of {', '.join(KINDS)}"
    if expected == "text":
        return None if isinstance(value, str) else "is not a string"
    if expected == "time":
        return None if is_utc_stamp(value) else "is not a time with its zone"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "is not a number"
    return None if expected != "int" or isinstance(value, int) else "is not a whole number"


def _entry_problem(entry: Any, kind: str, stamped: bool = False) -> str | None:
    """Why ``entry`` is not a target entry of a ``kind`` run (``stamped``: as the index
    keeps it, with ``kind`` and ``run_started_at``), or None."""
    if not isinstance(entry, dict):
        return f"a target is {_shape(entry)}, not an object"
    fields = _SYNC_FIELDS + _SYNC_STATS if kind == "sync" else (*_PLAN_FIELDS, "finished_at")
    fields += ("kind", "run_started_at") if stamped else ()
    for key in fields:
        if key not in entry:
            return f"a target has no {key!r}"
        what = _value_problem(entry[key], _ENTRY_TYPES.get(key, "number"))
        if what is not None:
            return f"a target's {key!r} {what}"
    return None


#: The fields of a run record that readers use, with their types (as in _ENTRY_TYPES);
#: the required ones are never null. Records before Slurm support have no slurm/shard.
_RECORD_TYPES = {
    "kind": "kind",
    "started_at": "time",
    "finished_at": "time",
    "exit_code": "int",
    "duration_s": "number",
    "parallel": "int",
    "interrupted": "text",
}
_RECORD_REQUIRED = ("kind", "started_at", "finished_at", "exit_code")


def _record_problem(record: Any) -> str | None:
    """Why ``record`` (a history line's JSON) is not a run record, or None."""
    if not isinstance(record, dict):
        return f"{_shape(record)}, not an object"
    if record.get("v") != STATE_VERSION:
        return f"a record of version {record.get('v')!r}; this pdb-sync reads {STATE_VERSION}"
    for key, expected in _RECORD_TYPES.items():
        if key in _RECORD_REQUIRED and record.get(key) is None:
            return f"{key!r} is missing"
        what = _value_problem(record.get(key), expected)
        if what is not None:
            return f"{key!r} {what}"
    for key in ("slurm", "shard"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            return f"{key!r} is not an object"
    targets = record.get("targets")
    if not isinstance(targets, list):
        return f"'targets' is {_shape(targets)}, not a list"
    for entry in targets:
        what = _entry_problem(entry, record["kind"])
        if what is not None:
            return what
    return None


def _index_problem(data: Any) -> tuple[tuple[str, ...], str] | None:
    """Why ``data`` cannot be ``targets.json`` at all (with the key it is about), or
    None; each target's state is checked by :func:`_target_state_problem`."""
    if not isinstance(data, dict):
        return (), f"{_shape(data)}, not the per-target index"
    if data.get("v") != STATE_VERSION:
        return ("v",), f"an index of version {data.get('v')!r}; this pdb-sync reads {STATE_VERSION}"
    if "targets" not in data:
        return (), "no 'targets'"
    if not isinstance(data["targets"], dict):
        return ("targets",), f"'targets' is {_shape(data['targets'])}, not an object"
    if _value_problem(data.get("updated_at"), "time") is not None:
        return ("updated_at",), "'updated_at' is not a time"
    return None


def _target_state_problem(target: Any) -> str | None:
    """Why ``target`` is not one target's state in ``targets.json``, or None."""
    if not isinstance(target, dict):
        return f"{_shape(target)}, not an object"
    for key, kind in (
        ("last_run", "sync"),
        ("last_success", "sync"),
        ("last_failure", "sync"),
        ("last_plan", "plan"),
    ):
        if key not in target:
            return f"no {key!r}"
        entry = target[key]
        what = None if entry is None else _entry_problem(entry, kind, stamped=True)
        if what is None and entry is not None and entry["kind"] != kind:
            what = f"a {entry['kind']} entry"
        if what is not None:
            return f"{key!r}: {what}"
    for key in ("runs", "files_transferred_total", "bytes_transferred_total"):
        what = _value_problem(target.get(key), "int" if key == "runs" else "number")
        if target.get(key) is None or what is not None:
            return f"{key!r} {what or 'is missing'}"
    return None


def _shape(value: Any) -> str:
    """``value``'s JSON type, for a warning: "a list", "a string", "null"."""
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}
    return names.get(type(value), "a number")


# -- bad records: one warning, kept aside before they are dropped -------------------------

#: Line numbers a warning lists besides the first.
_SHOWN_LINES = 5


def _warn_bad(path: Path, bad: list[tuple[int, str]], aside: Path | None = None) -> None:
    """One warning for the bad records of ``path``: the first named, the others' lines
    listed, and where the file's bytes were kept when ``aside`` is given."""
    line, what = bad[0]
    text = f"state {path} line {line}: {what}; skipped"
    if len(bad) > 1:
        lines = [str(number) for number, _what in bad[1:]]
        shown = ", ".join(lines[:_SHOWN_LINES]) + (", ..." if len(lines) > _SHOWN_LINES else "")
        text += f" (and {len(lines)} more, on line{'s' if len(lines) > 1 else ''} {shown})"
    if aside is not None:
        text += f"; the file as it was is kept in {aside}"
    from pdbsync import log

    log.warning("{}", text)


def _keep_aside(path: Path, data: bytes) -> Path:
    """Write ``data`` (``path``'s bytes) to a new ``NAME.bad-STAMP`` beside it, before
    ``path`` is rewritten without its bad records; the new file's path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.bad-{stamp}")
    number = 1
    while aside.exists() or aside.is_symlink():
        number += 1
        aside = path.with_name(f"{path.name}.bad-{stamp}-{number}")
    outputs.write_file(aside, data, label=f"state {aside}")
    return aside


def _index_line(raw: bytes, *keys: str) -> int:
    """The line in ``targets.json`` (bytes ``raw``) where the member at ``keys`` (e.g.
    ``("targets", "mmcif")``) starts, else where the deepest one found starts. Only for
    warnings, so only on the rare path of a bad file."""
    text = raw.decode("utf-8", "replace")
    line_at = value = _SPACE.match(text).end()
    try:
        for key in keys:
            found = _member(text, value, key)
            if found is None:
                break
            line_at, value = found
    except (ValueError, IndexError):  # JSON the positions cannot be followed through
        pass
    return text.count("\n", 0, line_at) + 1


_SPACE = re.compile(r"\s*")


def _member(text: str, start: int, key: str) -> tuple[int, int] | None:
    """Where member ``key`` of the JSON object at ``start`` begins and where its value
    begins, or None when it has none (orjson, which reads the file, gives no positions)."""
    import json

    decoder = json.JSONDecoder()
    position = _SPACE.match(text, start).end()
    if text[position] != "{":
        return None
    position = _SPACE.match(text, position + 1).end()
    while text[position] == '"':
        name, after = decoder.raw_decode(text, position)
        value = _SPACE.match(text, _SPACE.match(text, after).end() + 1).end()
        if name == key:
            return position, value
        _skipped, end = decoder.raw_decode(text, value)
        position = _SPACE.match(text, end).end()
        if text[position] != ",":
            return None
        position = _SPACE.match(text, position + 1).end()
    return None


# -- reading ----------------------------------------------------------------------------


@dataclass
class _Scan:
    """A history file read line by line: the records, their lines (for a compaction)
    and the bad ones as (line number, problem)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)


def _scan(data: bytes) -> _Scan:
    scan = _Scan()
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # the torn last line of a crashed writer (ended by the next one)
        problem = _record_problem(record)
        if problem is not None:
            scan.bad.append((number, f"not a run record: {problem}"))
            continue
        scan.records.append(record)
        scan.lines.append(line)
    return scan


def _read_records(history: Path, quiet: bool = False) -> list[dict[str, Any]]:
    try:
        data = read_file(history)
    except FileNotFoundError:
        return []
    scan = _scan(data)
    if scan.bad and not quiet:
        _warn_bad(history, scan.bad)
    return scan.records


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


def target_states(
    directory: Path | None = None, *, quiet: bool = False
) -> dict[str, dict[str, Any]]:
    """Per target: ``last_run``, ``last_success``, ``last_failure``, ``last_plan`` (each
    a target entry or None), ``runs`` and the transfer totals; {} before the first run.
    ``quiet``: skip bad records without a warning (a hint for the scheduler; the run's
    record warns, and keeps the file, when it rewrites it)."""
    where = _reading(directory)
    try:
        index = _read_index(where, quiet)
    except OSError as exc:
        raise StateError(f"state {where}: {exc.strerror or exc}") from None
    return index.get("targets", {})


def last_durations(directory: Path | None = None) -> dict[str, float]:
    """Seconds each target's last successful full sync took (for longest-first
    scheduling, shard weights and deadline estimates): a weekly target's weekly run
    (``mode``) takes seconds and would make its next full sync look cheap."""
    durations = {}
    for name, state in target_states(directory, quiet=True).items():
        entry = state.get("last_full_success")
        if not isinstance(entry, dict):
            entry = state.get("last_success")
            if entry and entry.get("mode") == "weekly":
                continue
        if entry and entry.get("duration_s") is not None:
            durations[name] = entry["duration_s"]
    return durations


def last_sizes(directory: Path | None = None) -> dict[str, int]:
    """Each target's source size in bytes (rsync's "Total file size"), from its last
    successful full sync, else its last plan; targets with neither are left out."""
    sizes = {}
    for name, state in target_states(directory, quiet=True).items():
        for key in ("last_full_success", "last_success", "last_plan"):
            entry = state.get(key)
            if not isinstance(entry, dict) or entry.get("mode") == "weekly":
                continue  # a weekly run's size is the week's files, not the tree's
            if entry.get("total_size") is not None:
                sizes[name] = entry["total_size"]
                break
    return sizes
