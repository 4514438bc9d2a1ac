"""Results, totals, exit codes and the atomic, validated summary file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdbsync import contracts
from pdbsync.errors import ExitCode
from pdbsync.render import summary_block
from pdbsync.summary import (
    Summary,
    SummaryWriteError,
    SyncResult,
    write_atomically,
    write_summary,
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
    write_summary(path, data)
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


def test_invalid_summary_is_never_written(tmp_path):
    path = tmp_path / "summary.json"
    data = _summary(_result("a", "success")).to_dict()
    data["totals"]["total"] = -1
    with pytest.raises(AssertionError):
        write_summary(path, data)
    assert not path.exists()


@pytest.mark.parametrize(("run_code", "reported"), [(0, 1), (1, 1), (143, 143)])
def test_failed_summary_write_reports_the_process_exit_code(run_code, reported):
    """The run_finished event is rendered after the write: its exit_code must be what the
    process will exit with (a success becomes 1; a failure or a signal's code stays)."""
    from pdbsync.sync import _write_summary

    data = {**_summary(_result("a", "success")).to_dict(), "exit_code": run_code}
    failure = _write_summary(Path("/dev/full"), data)
    assert isinstance(failure, SummaryWriteError)
    assert data["exit_code"] == reported == failure.exit_code
    assert failure.message == "--summary /dev/full: cannot write: No space left on device"


def test_successful_summary_write_changes_nothing(tmp_path):
    from pdbsync.sync import _write_summary

    data = _summary(_result("a", "success")).to_dict()
    assert _write_summary(tmp_path / "s.json", data) is None
    assert data["exit_code"] == 0
    assert json.loads((tmp_path / "s.json").read_text()) == data
