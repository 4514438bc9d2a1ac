"""pdbsync.store.history: the history and per-target index, bounded and safe to share."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
from pathlib import Path

import orjson
import pytest
from conftest import run_cli, write_config

from pdbsync.store import history as state


def _result(name: str, status: str, finished: str, **extra) -> dict:
    return {
        "name": name,
        "url": f"rsync://127.0.0.1/x/{name}/",
        "dest": f"/m/{name}",
        "status": status,
        "exit_code": 0 if status == "success" else 10,
        "exit_meaning": "success" if status == "success" else "error in socket I/O",
        "error": None if status == "success" else "@ERROR: broken",
        "attempts": 1,
        "started_at": finished,
        "finished_at": finished,
        "duration_s": extra.pop("duration_s", 1.5),
        "files_transferred": extra.pop("files", 3),
        "bytes_transferred": extra.pop("bytes", 300),
        "stats": extra.pop("stats", {"total_size": 1000, "files_total": 7}),
    }


def _summary(*results: dict, started: str = "2026-01-01T00:00:00.000Z") -> dict:
    failed = any(r["status"] != "success" for r in results)
    return {
        "v": 1,
        "version": "0.1.0",
        "parallel": 1,
        "started_at": started,
        "finished_at": started,
        "interrupted": None,
        "exit_code": 1 if failed else 0,
        "totals": {},
        "timings": {"total_s": 2.0, "average_s": 1.0},
        "results": list(results),
    }


def test_state_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("PDB_SYNC_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    home = {"HOME": str(tmp_path / "home")}
    assert state.state_dir(home) == tmp_path / "home/.local/state/pdb-sync"
    xdg = {**home, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    assert state.state_dir(xdg) == tmp_path / "xdg/pdb-sync"
    assert state.state_dir({**xdg, "PDB_SYNC_STATE_DIR": str(tmp_path / "own")}) == (
        tmp_path / "own"
    )


def test_records_newest_first_with_the_per_target_index(tmp_path):
    state.record_run(
        _summary(_result("a", "success", "2026-01-01T00:00:01.000Z")), "sync", tmp_path
    )
    state.record_run(
        _summary(
            _result("a", "failed", "2026-01-02T00:00:01.000Z"),
            _result("b", "success", "2026-01-02T00:00:02.000Z", duration_s=9.0),
            started="2026-01-02T00:00:00.000Z",
        ),
        "sync",
        tmp_path,
    )
    runs = state.last_runs(directory=tmp_path)
    assert [r["started_at"] for r in runs] == [
        "2026-01-02T00:00:00.000Z",
        "2026-01-01T00:00:00.000Z",
    ]
    assert [e["status"] for e in state.target_history("a", directory=tmp_path)] == [
        "failed",
        "success",
    ]
    targets = state.target_states(tmp_path)
    assert targets["a"]["last_run"]["status"] == "failed"
    assert targets["a"]["last_success"]["finished_at"] == "2026-01-01T00:00:01.000Z"
    assert targets["a"]["last_failure"]["error"] == "@ERROR: broken"
    assert targets["a"]["runs"] == 2 and targets["a"]["bytes_transferred_total"] == 600
    assert state.last_durations(tmp_path) == {"a": 1.5, "b": 9.0}
    assert state.last_sizes(tmp_path) == {"a": 1000, "b": 1000}


def test_a_plan_is_kept_apart_from_the_last_sync(tmp_path):
    state.record_run(
        _summary(_result("a", "success", "2026-01-01T00:00:01.000Z")), "sync", tmp_path
    )
    plan = {
        "v": 1,
        "kind": "plan",
        "version": "0.1.0",
        "parallel": 1,
        "started_at": "2026-01-03T00:00:00.000Z",
        "finished_at": "2026-01-03T00:00:05.000Z",
        "interrupted": None,
        "exit_code": 0,
        "totals": {},
        "timings": {"total_s": 5.0},
        "targets": [
            {
                "name": "a",
                "status": "success",
                "exit_code": 0,
                "exit_meaning": "success",
                "error": None,
                "duration_s": 4.0,
                "files_total": 9,
                "total_size": 5000,
                "to_create": 1,
                "to_update": 2,
                "to_delete": None,
                "bytes_to_transfer": 77,
            }
        ],
    }
    state.record_run(plan, "plan", tmp_path)
    a = state.target_states(tmp_path)["a"]
    assert a["last_run"]["kind"] == "sync" and a["runs"] == 1
    assert a["last_plan"]["bytes_to_transfer"] == 77
    assert state.last_runs(directory=tmp_path, kind="plan")[0]["kind"] == "plan"


def test_a_lost_index_is_rebuilt_from_the_history(tmp_path):
    state.record_run(
        _summary(_result("a", "success", "2026-01-01T00:00:01.000Z")), "sync", tmp_path
    )
    (tmp_path / state.INDEX_FILE).write_text("{ not json")
    assert state.target_states(tmp_path)["a"]["last_success"] is not None
    (tmp_path / state.INDEX_FILE).unlink()
    state.record_run(
        _summary(_result("b", "success", "2026-01-02T00:00:01.000Z")), "sync", tmp_path
    )
    index = orjson.loads((tmp_path / state.INDEX_FILE).read_bytes())
    assert set(index["targets"]) == {"a", "b"}


def test_a_torn_last_line_is_skipped_and_ended_by_the_next_writer(tmp_path):
    state.record_run(
        _summary(_result("a", "success", "2026-01-01T00:00:01.000Z")), "sync", tmp_path
    )
    history = tmp_path / state.HISTORY_FILE
    with history.open("ab") as stream:
        stream.write(b'{"v": 1, "kind": "sync", "targ')  # a writer killed mid-line
    assert len(state.last_runs(directory=tmp_path)) == 1
    state.record_run(
        _summary(_result("b", "success", "2026-01-02T00:00:01.000Z")), "sync", tmp_path
    )
    assert [r["targets"][0]["name"] for r in state.last_runs(directory=tmp_path)] == ["b", "a"]
    lines = history.read_bytes().split(b"\n")
    assert orjson.loads(lines[-2])["targets"][0]["name"] == "b"  # its own line


def test_history_is_compacted_to_the_newest_runs_within_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(state, "MAX_HISTORY_BYTES", 8_000)
    for day in range(1, 29):
        stamp = f"2026-02-{day:02d}T00:00:00.000Z"
        state.record_run(_summary(_result("a", "success", stamp), started=stamp), "sync", tmp_path)
        assert (tmp_path / state.HISTORY_FILE).stat().st_size <= 8_000
    runs = state.last_runs(directory=tmp_path)
    assert runs[0]["started_at"] == "2026-02-28T00:00:00.000Z"
    assert 1 < len(runs) < 28
    days = [r["started_at"] for r in runs]
    assert days == sorted(days, reverse=True)
    # the index outlives the compaction: every run still counted
    assert state.target_states(tmp_path)["a"]["runs"] == 28


def _record_many(directory: str, writer: int, count: int) -> None:
    for run in range(count):
        stamp = f"2026-03-01T00:{writer:02d}:{run:02d}.000Z"
        state.record_run(
            _summary(_result(f"w{writer}", "success", stamp), started=stamp),
            "sync",
            Path(directory),
        )


def test_concurrent_runs_lose_no_record(tmp_path):
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_record_many, args=(str(tmp_path), n, 25)) for n in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    runs = state.last_runs(directory=tmp_path)
    assert len(runs) == 100
    counts = {name: s["runs"] for name, s in state.target_states(tmp_path).items()}
    assert counts == {f"w{n}": 25 for n in range(4)}


def test_a_lock_held_too_long_is_a_state_error(tmp_path, monkeypatch):
    monkeypatch.setattr(state, "LOCK_TIMEOUT_S", 0.2)
    fd = os.open(tmp_path / state.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(state.StateError, match="held lock"):
            state.record_run(
                _summary(_result("a", "success", "2026-01-01T00:00:01Z")), "sync", tmp_path
            )
    finally:
        os.close(fd)
    assert not (tmp_path / state.HISTORY_FILE).exists()


def test_an_unwritable_state_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(state.StateError) as caught:
        state.record_run(_summary(_result("a", "success", "2026-01-01T00:00:01Z")), "sync", blocker)
    assert str(blocker) in caught.value.message and "\n" not in caught.value.message


def test_the_history_follows_a_symlink(tmp_path):
    real = tmp_path / "elsewhere.jsonl"
    real.write_text("")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / state.HISTORY_FILE).symlink_to(real)
    state.record_run(
        _summary(_result("a", "success", "2026-01-01T00:00:01Z")), "sync", tmp_path / "state"
    )
    assert (tmp_path / "state" / state.HISTORY_FILE).is_symlink()
    assert orjson.loads(real.read_bytes())["targets"][0]["name"] == "a"


STATE_FILES = ["rsync-version", "valid-configs", "targets.json", "history.jsonl"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", STATE_FILES)
def test_a_fifo_where_a_state_file_belongs_neither_hangs_nor_fails_a_sync(name, four_targets):
    """Opening a FIFO to read waits for a writer: a run must not hang on it (reading
    state files opens them non-blocking and refuses what is not a regular file)."""
    from conftest import run_cli

    from pdbsync.rsync import program as rsync

    directory = state.state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.mkfifo(directory / name)
    rsync._version_text.cache_clear()  # as in a new process: the state file is consulted
    result = run_cli("--config", str(four_targets), "sync", "emdb", "--format", "json")
    assert result.code == 0, result.stderr
    assert result.events[-1]["type"] == "run_finished"
    if name in ("targets.json", "history.jsonl"):  # the history: one warning, run unharmed
        assert f"state {directory / name}: not a regular file" in result.stderr
    assert (directory / name).is_fifo(), "the FIFO was replaced or removed"


def test_reading_a_directory_or_missing_state_file():
    directory = state.state_dir()
    (directory / "targets.json").mkdir(parents=True)
    with pytest.raises(state.StateError, match="not a regular file"):
        state.read_file(directory / "targets.json")
    with pytest.raises(FileNotFoundError):
        state.read_file(directory / "history.jsonl")


# -- records of the wrong shape: skipped with one warning, kept before they are dropped -----

#: Well-formed JSON that is no run record; each made every sync, status and history
#: exit 70 (an internal error) or vanished without a word.
BAD_RECORDS = {
    "a list": b"[1, 2]",
    "a string": b'"sync"',
    "a record missing keys": b'{"v": 1, "kind": "sync"}',
    "targets of the wrong type": b'{"v": 1, "kind": "sync", "started_at": '
    b'"2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z", "exit_code": 0, '
    b'"duration_s": 1.0, "targets": "sifts"}',
    "a target of the wrong shape": b'{"v": 1, "kind": "sync", "started_at": '
    b'"2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z", "exit_code": 0, '
    b'"duration_s": 1.0, "targets": [{"name": "sifts", "status": 0}]}',
}


@pytest.fixture
def sifts_emdb(mirror, tmp_path):
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"},
            "emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"},
        },
    )


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line.lower()]


def _two_runs() -> None:
    """Two good runs of sifts and emdb in the state dir of the test."""
    for day in ("01", "02"):
        stamp = f"2026-01-{day}T00:00:01.000Z"
        state.record_run(
            _summary(_result("sifts", "success", stamp), _result("emdb", "success", stamp)),
            "sync",
            state.state_dir(),
        )


@pytest.mark.parametrize("shape", list(BAD_RECORDS))
def test_a_history_record_of_the_wrong_shape_is_skipped_with_one_warning(shape, sifts_emdb):
    directory = state.state_dir()
    _two_runs()
    history = directory / state.HISTORY_FILE
    lines = history.read_bytes().splitlines(keepends=True)
    history.write_bytes(lines[0] + BAD_RECORDS[shape] + b"\n" + lines[1])  # the bad one: line 2
    (directory / state.INDEX_FILE).unlink()  # so that every command reads the history
    where = f"state {history} line 2: not a run record"

    shown = run_cli("history", "--format", "json")
    assert shown.code == 0, shown.stderr
    assert len(orjson.loads(shown.stdout)) == 2
    (warning,) = _warnings(shown.stderr)
    assert where in warning and "skipped" in warning

    status = run_cli("--config", str(sifts_emdb), "status", "--max-age", "1000d")
    assert status.code == 0, status.stderr
    (warning,) = _warnings(status.stderr)
    assert where in warning

    synced = run_cli("--config", str(sifts_emdb), "sync", "sifts")
    assert synced.code == 0, synced.stderr
    (warning,) = _warnings(synced.stderr)
    assert where in warning
    assert len(state.last_runs()) == 3  # recorded, beside the bad line it kept
    assert BAD_RECORDS[shape] in history.read_bytes()


def test_a_time_without_its_zone_is_skipped_not_a_crash(sifts_emdb):
    """pdb-sync never writes a stamp without Z or an offset; a hand-written one passed the
    check, and the age ``status`` computes from it was a TypeError (exit 70)."""
    directory = state.state_dir()
    _two_runs()
    history = directory / state.HISTORY_FILE
    lines = history.read_bytes().splitlines(keepends=True)
    history.write_bytes(lines[0] + lines[1].replace(b'.000Z"', b'.000"'))  # the newest, naive
    (directory / state.INDEX_FILE).unlink()  # so that status reads the history

    status = run_cli("--config", str(sifts_emdb), "status", "--format", "json")
    assert status.code == 0, status.stderr
    (warning,) = _warnings(status.stderr)
    assert f"{history} line 2: not a run record" in warning
    assert "is not a time with its zone" in warning
    rows = {row["name"]: row for row in orjson.loads(status.stdout)["targets"]}
    assert rows["sifts"]["last_success"]["finished_at"] == "2026-01-01T00:00:01.000Z"


def test_many_bad_records_are_one_warning(tmp_path):
    _two_runs()
    history = state.state_dir() / state.HISTORY_FILE
    with history.open("ab") as stream:
        stream.write(b"[]\n" * 9)
    result = run_cli("history")
    assert result.code == 0
    (warning,) = _warnings(result.stderr)
    assert (
        f"{history} line 3:" in warning and "(and 8 more, on lines 4, 5, 6, 7, 8, ...)" in warning
    )


def _bad_index(shape: str, index: dict) -> bytes:
    """``targets.json`` made wrong in one way (``index`` is the good one)."""
    if shape == "a list":
        return b"[]"
    if shape == "a string":
        return b'"targets"'
    if shape == "no targets":
        return b'{"v": 1}'
    if shape == "a target of the wrong type":
        index["targets"]["emdb"] = "synced"
    elif shape == "a count of the wrong type":
        index["targets"]["emdb"]["runs"] = "two"
    elif shape == "an entry missing a key":
        del index["targets"]["emdb"]["last_success"]["finished_at"]
    return orjson.dumps(index, option=orjson.OPT_INDENT_2)


@pytest.mark.parametrize(
    "shape",
    [
        "a list",
        "a string",
        "no targets",
        "a target of the wrong type",
        "a count of the wrong type",
        "an entry missing a key",
    ],
)
def test_a_bad_targets_file_is_skipped_then_kept_aside_before_it_is_rewritten(shape, sifts_emdb):
    directory = state.state_dir()
    _two_runs()
    index_path = directory / state.INDEX_FILE
    bad = _bad_index(shape, orjson.loads(index_path.read_bytes()))
    index_path.write_bytes(bad)
    found = bad.find(b'"emdb": ')
    line = bad[:found].count(b"\n") + 1 if found >= 0 else 1
    where = f"state {index_path} line {line}: "

    status = run_cli("--config", str(sifts_emdb), "status", "--format", "json")
    assert status.code == 0, status.stderr
    (warning,) = _warnings(status.stderr)
    assert where in warning
    rows = {row["name"]: row for row in orjson.loads(status.stdout)["targets"]}
    assert rows["emdb"]["last_success"] is not None  # rebuilt from the history
    assert index_path.read_bytes() == bad  # a reader writes nothing

    synced = run_cli("--config", str(sifts_emdb), "sync", "sifts")
    assert synced.code == 0, synced.stderr
    (warning,) = _warnings(synced.stderr)
    assert where in warning and "kept in " in warning
    aside = Path(warning.split("kept in ", 1)[1])
    assert aside.parent == directory and aside.name.startswith("targets.json.bad-")
    assert aside.read_bytes() == bad
    rewritten = orjson.loads(index_path.read_bytes())["targets"]
    assert rewritten["sifts"]["runs"] == 3 and rewritten["emdb"]["runs"] == 2
    again = run_cli("--config", str(sifts_emdb), "status")
    assert again.code == 0 and _warnings(again.stderr) == []


def test_a_compaction_keeps_a_history_with_bad_records_aside(sifts_emdb, monkeypatch):
    _two_runs()
    history = state.state_dir() / state.HISTORY_FILE
    with history.open("ab") as stream:
        stream.write(BAD_RECORDS["a record missing keys"] + b"\n")
    before = history.read_bytes()
    monkeypatch.setattr(state, "MAX_HISTORY_BYTES", len(before))  # this run compacts

    synced = run_cli("--config", str(sifts_emdb), "sync", "sifts", "--format", "json")
    assert synced.code == 0, synced.stderr
    (warning,) = _warnings(synced.stderr)
    assert f"state {history} line 3: not a run record" in warning
    aside = Path(warning.split("kept in ", 1)[1])
    kept = aside.read_bytes()
    assert kept[: len(before)] == before  # every byte the compaction dropped
    (this_run,) = kept[len(before) :].splitlines()
    assert orjson.loads(this_run)["started_at"] == synced.events[-1]["summary"]["started_at"]
    assert BAD_RECORDS["a record missing keys"] not in history.read_bytes()
    assert history.stat().st_size <= len(before)


def test_weekly_runs_do_not_weigh_the_next_full_sync(tmp_path):
    """History keeps each run's mode: durations and sizes for scheduling, shards and
    deadlines come from a weekly target's full syncs, not its seconds-long weekly runs."""
    full = _result("w", "success", "2026-01-01T00:00:01.000Z", duration_s=120.0)
    full["mode"] = "full"
    state.record_run(_summary(full), "sync", tmp_path)
    weekly = _result(
        "w",
        "success",
        "2026-01-08T00:00:01.000Z",
        duration_s=2.0,
        stats={"total_size": 10, "files_total": 3},
    )
    weekly["mode"] = "weekly"
    state.record_run(_summary(weekly, started="2026-01-08T00:00:00.000Z"), "sync", tmp_path)
    targets = state.target_states(tmp_path)
    assert targets["w"]["last_success"]["mode"] == "weekly"
    assert targets["w"]["last_full_success"]["duration_s"] == 120.0
    assert state.last_durations(tmp_path) == {"w": 120.0}
    assert state.last_sizes(tmp_path) == {"w": 1000}
    assert state.last_runs(directory=tmp_path)[0]["targets"][0]["mode"] == "weekly"
