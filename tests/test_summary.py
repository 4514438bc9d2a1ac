"""Results, totals, exit codes and the atomic, validated summary file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdbsync import contracts
from pdbsync.errors import ExitCode
from pdbsync.report.render import summary_block
from pdbsync.report.summary import (
    Summary,
    SyncResult,
    summary_json,
    validate_summary,
    write_atomically,
)

NOW = "2026-11-27T10:00:00.000Z"


def _result(name: str, status: str, **fields) -> SyncResult:
    return SyncResult(
        name=name,
        url=f"h::m/{name}/",
        dest=f"/d/{name}",
        status=status,
        started_at=NOW,
        finished_at=NOW,
        **fields,
    )


def _summary(*results: SyncResult, interrupted=None) -> Summary:
    return Summary(
        list(results),
        parallel=3,
        started_at=NOW,
        finished_at=NOW,
        duration_s=45.23,
        interrupted=interrupted,
    )


def test_exit_code_follows_the_worst_outcome():
    assert _summary(_result("a", "success")).exit_code == ExitCode.OK
    assert _summary(_result("a", "success"), _result("b", "failed")).exit_code == 1
    assert _summary(_result("a", "skipped")).exit_code == ExitCode.SYNC_FAILED
    assert _summary(_result("a", "cancelled"), interrupted="SIGINT").exit_code == 130
    assert _summary(_result("a", "cancelled"), interrupted="SIGTERM").exit_code == 143


def test_summary_carries_every_field_and_validates():
    data = _summary(
        _result("a", "success", duration_s=10.0, files_transferred=3, bytes_transferred=300),
        _result(
            "b",
            "failed",
            exit_code=10,
            exit_meaning="error in socket I/O",
            error="rsync: connection reset",
            duration_s=3.2,
            attempts=2,
        ),
        _result("c", "skipped"),
    ).to_dict()
    assert not contracts.problems(data, "summary")
    assert data["totals"] == {
        "total": 3,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 0,
        "skipped": 1,
        "files_transferred": 3,
        "bytes_transferred": 300,
        "files_created": 0,
        "files_deleted": 0,
    }
    assert data["timings"] == {"total_s": 45.23, "average_s": 6.6}
    assert set(data["results"][2]) == set(data["results"][0])  # nothing omitted


def test_schema_rejects_a_missing_field():
    data = _summary(_result("a", "success")).to_dict()
    del data["results"][0]["attempts"]
    assert any("attempts" in p for p in contracts.problems(data, "summary"))


def test_text_block_lists_failures_with_exit_meaning():
    data = _summary(
        _result("pdb", "success", duration_s=42.0),
        _result("emdb", "failed", exit_code=10, exit_meaning="error in socket I/O", duration_s=3.2),
    ).to_dict()
    block = summary_block(data)
    assert "=== Sync Summary ===" in block
    assert "Total: 2 | Success: 1 | Failed: 1" in block
    assert "  emdb: exit 10 (error in socket I/O) after 3.2s" in block
    assert "Total time: 45.23s | Average: 22.60s" in block


def test_write_summary_is_atomic_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "deep" / "summary.json"
    data = _summary(_result("a", "success")).to_dict()
    validate_summary(data)
    write_atomically(path, summary_json(data))
    assert json.loads(path.read_text()) == data
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text('{"old": true}')

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pdbsync.outputs.os.replace", broken_replace)
    with pytest.raises(Exception, match="No space left"):
        write_atomically(path, b"new")
    assert path.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_an_invalid_summary_is_caught_before_anything_is_written():
    data = _summary(_result("a", "success")).to_dict()
    data["totals"]["total"] = -1
    with pytest.raises(AssertionError, match=r"totals\.total"):
        validate_summary(data)  # pdbsync.run.driver validates before it writes anything


@pytest.mark.parametrize(
    ("results", "interrupted", "reported"),
    [(["success"], None, 1), (["failed"], None, 1), (["cancelled"], "SIGTERM", 143)],
)
def test_a_summary_that_could_not_be_written_fails_the_run(results, interrupted, reported):
    """The run_finished event is sent after the write: its exit_code must be what the
    process will exit with (a success becomes 1; a failure or a signal's code stays)."""
    summary = _summary(*(_result(f"t{i}", status) for i, status in enumerate(results)))
    summary.interrupted = interrupted
    summary.write_error = "--summary /dev/full: cannot write: No space left on device"
    assert summary.exit_code == reported == summary.to_dict()["exit_code"]


def test_run_writes_the_summary_it_reports(tmp_path):
    from pdbsync.run.driver import RunSettings, run_sync

    events = []
    summary = run_sync([], RunSettings(summary_path=tmp_path / "s.json"), events.append)
    assert summary.write_error is None and summary.exit_code == 0
    assert json.loads((tmp_path / "s.json").read_text()) == events[-1]["summary"]


def test_run_with_an_unwritable_summary_says_so_in_its_last_event():
    from pdbsync.run.driver import RunSettings, run_sync

    events = []
    summary = run_sync([], RunSettings(summary_path=Path("/dev/full")), events.append)
    assert summary.write_error == "--summary /dev/full: cannot write: No space left on device"
    assert events[-1]["summary"]["exit_code"] == summary.exit_code == 1
