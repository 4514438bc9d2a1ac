"""``--events`` and ``--log-file`` of a sync: opened once the run has passed every check
(pdbsync.api's ``before_run``), so a refused run leaves neither; the events sent before
that (a preflight ``warning``) still reach the events file, in both formats.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import assert_valid_events, run_cli, write_config
from test_write_rules import _snapshot

import pdbsync
from pdbsync.paths import lock_path
from pdbsync.report.event_log import EventLog


def _two_targets(tmp_path: Path, mirror, extra: str = "", **a_fields: object) -> Path:
    url = mirror.url("ftp_data", "sifts/")
    return write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"a": {"url": url, "dest": "a", **a_fields}, "b": {"url": url, "dest": "b"}},
        extra,
    )


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("case", ["require_safe_rsync", "lock_path_is_a_dir", "partial_dir"])
def test_a_refused_sync_leaves_no_events_or_log_file(mirror, tmp_path, request, case):
    # Before: the events file (empty) and the log file were opened before api.sync's
    # own checks (the rsync floor, the lock paths) and were left behind.
    extra, fields = "", {}
    if case == "require_safe_rsync":
        request.getfixturevalue("old_rsync")
        extra = "\n[sync]\nrequire_safe_rsync = true\n"
    elif case == "lock_path_is_a_dir":
        lock_path(tmp_path / "pdb" / "a").mkdir(parents=True)
    else:
        fields = {"options.partial": True, "options.partial_dir": str(tmp_path / "pdb" / "b" / "x")}
    config = _two_targets(tmp_path, mirror, extra, **fields)
    events, log = tmp_path / "e.jsonl", tmp_path / "l.log"
    before = _snapshot(tmp_path)
    result = run_cli(
        "--config", str(config), "--log-file", str(log), "sync", "a", "--events", str(events)
    )
    assert result.code == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not events.exists() and not log.exists()
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_a_preflight_warning_reaches_the_events_file_in_both_formats(
    mirror, tmp_path, old_rsync, output_format
):
    # Before: in text mode the warning went to stderr only, never to --events.
    config = _two_targets(tmp_path, mirror)
    events, log = tmp_path / "e.jsonl", tmp_path / "l.log"
    result = run_cli(
        "--config", str(config), "--log-file", str(log), "sync", "a",
        "--events", str(events), "--format", output_format,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    written = _lines(events)
    assert_valid_events(written)
    warnings = [event for event in written if event["type"] == "warning"]
    assert [w["code"] for w in warnings] == ["vulnerable_rsync"]
    kinds = [event["type"] for event in written]
    assert kinds.index("warning") < kinds.index("run_started")
    assert kinds[-1] == "run_finished"
    assert result.stderr.count("pdb-sync: warning:") == 1  # once, not again via the renderer
    if output_format == "text":
        assert b"warning" not in result.stdout
    else:
        assert [e for e in result.events if e["type"] == "warning"] == warnings
    assert log.exists()  # the log file is opened too, after the checks


def test_an_events_file_never_started_is_not_created_and_one_started_gets_the_early_events(
    tmp_path,
):
    seen: list[dict] = []
    never = tmp_path / "never.jsonl"
    log = EventLog.deferred(seen.append, never)
    log({"type": "warning", "message": "early"})
    log.flush()
    assert log.close() is None
    assert not never.exists()
    started = tmp_path / "started.jsonl"
    log = EventLog.deferred(seen.append, started)
    log({"type": "warning", "message": "early"})
    log.flush()  # not open yet: kept
    log.start()
    log({"type": "run_started"})
    assert log.close() is None
    assert [e["type"] for e in _lines(started)] == ["warning", "run_started"]
    assert len(seen) == 3  # every event also went on to the sink


def test_before_run_is_called_once_after_the_checks_and_before_the_run(mirror, tmp_path):
    config = _two_targets(tmp_path, mirror)
    order: list[str] = []
    pdbsync.sync(
        config,
        ["a"],
        environ={},
        on_event=lambda event: order.append(event["type"]),
        before_run=lambda: order.append("before_run"),
    )
    assert order.count("before_run") == 1
    assert order.index("before_run") < order.index("run_started")
    lock_path(tmp_path / "pdb" / "b").mkdir(parents=True)
    called: list[str] = []
    with pytest.raises(pdbsync.PdbSyncError):
        pdbsync.sync(config, ["b"], environ={}, before_run=lambda: called.append("yes"))
    assert called == []


def test_the_library_refuses_its_callers_outputs_with_the_summary(mirror, tmp_path):
    config = _two_targets(tmp_path, mirror)
    (tmp_path / "pdb" / "b").mkdir(parents=True)
    before = _snapshot(tmp_path)
    with pytest.raises(pdbsync.UsageError, match=r"^my log .* is inside the dest of target 'b'"):
        pdbsync.sync(
            config, ["a"], environ={}, outputs={"my log": tmp_path / "pdb" / "b" / "run.log"}
        )
    summary = tmp_path / "s.json"
    same = str(tmp_path / "out" / ".." / "s.json")  # another spelling of the summary's path
    with pytest.raises(pdbsync.UsageError, match="is the same file as") as caught:
        pdbsync.plan(config, ["a"], environ={}, summary=summary, outputs={"my copy": same})
    assert "my copy" in caught.value.message and "summary" in caught.value.message
    assert _snapshot(tmp_path) == before
