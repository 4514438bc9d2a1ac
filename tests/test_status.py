"""``pdb-sync status`` and ``history`` against runs of the real rsync daemon."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from conftest import LiveRun, run_cli, write_config

from pdbsync.store import history as state
from pdbsync.store.views import format_age, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("36h", 129600), ("2d", 172800), ("90m", 5400), ("1d12h", 129600), ("1w", 604800)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["36", "", "h", "2x", "-1d", "0h", "1d 2"])
def test_durations_need_a_number_and_a_unit(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_ages_read_at_a_glance():
    assert format_age(3 * 86400 + 5 * 3600 + 7) == "3d 5h"
    assert format_age(125) == "2m 5s"


@pytest.fixture
def targets(mirror, tmp_path):
    """Two real targets and one that fails (a module path that does not exist)."""
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"},
            "emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"},
            "broken": {"url": mirror.url("ftp_data", "no-such-dir/"), "dest": "broken"},
        },
    )


def test_status_before_any_run_says_never_synced(targets):
    result = run_cli("--config", str(targets), "status", "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.text)
    assert [t["name"] for t in data["targets"]] == ["sifts", "emdb", "broken"]
    assert all(t["never_synced"] and t["last_success"] is None for t in data["targets"])
    text = run_cli("--config", str(targets), "status").text
    assert "sifts: never synced" in text


def test_status_after_runs_reports_last_run_success_and_failure(targets, tmp_path):
    assert run_cli("--config", str(targets), "sync", "sifts", "emdb").code == 0
    failed = run_cli("--config", str(targets), "sync", "--all", "--summary", str(tmp_path / "s"))
    assert failed.code == 1
    summary = json.loads((tmp_path / "s").read_text())
    by_name = {r["name"]: r for r in summary["results"]}
    result = run_cli("--config", str(targets), "status", "--format", "json")
    assert result.code == 0
    rows = {row["name"]: row for row in json.loads(result.text)["targets"]}
    assert rows["sifts"]["last_success"]["finished_at"] == by_name["sifts"]["finished_at"]
    assert rows["sifts"]["last_success"]["files_transferred"] == 0  # nothing new the 2nd time
    assert rows["broken"]["last_run"]["status"] == "failed"
    assert rows["broken"]["last_run"]["exit_code"] == by_name["broken"]["exit_code"]
    assert rows["broken"]["last_success"] is None and not rows["broken"]["never_synced"]
    text = run_cli("--config", str(targets), "status").text
    assert f"broken: last run failed: {by_name['broken']['error']}" in text


def test_max_age_is_a_ready_check(targets):
    assert run_cli("--config", str(targets), "sync", "sifts").code == 0
    fresh = run_cli("--config", str(targets), "status", "sifts", "--max-age", "1h")
    assert fresh.code == 0, fresh.text
    never = run_cli("--config", str(targets), "status", "sifts", "emdb", "--max-age", "2d")
    assert never.code == 1
    assert "emdb: STALE" in never.text and "sifts: STALE" not in never.text


def test_max_age_catches_an_old_success(targets, _own_state_dir):
    assert run_cli("--config", str(targets), "sync", "sifts").code == 0
    # age the recorded success by two days, as if the timer had stopped running
    index_path = _own_state_dir / state.INDEX_FILE
    index = orjson.loads(index_path.read_bytes())
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    index["targets"]["sifts"]["last_success"]["finished_at"] = old
    index_path.write_bytes(orjson.dumps(index))
    assert run_cli("--config", str(targets), "status", "sifts", "--max-age", "36h").code == 1
    assert run_cli("--config", str(targets), "status", "sifts", "--max-age", "3d").code == 0
    data = json.loads(
        run_cli(
            "--config", str(targets), "status", "sifts", "--format", "json", "--max-age", "36h"
        ).text
    )
    assert data["ok"] is False and data["targets"][0]["stale"] is True
    assert 2 * 86400 - 60 < data["targets"][0]["success_age_s"] < 2 * 86400 + 60


def test_a_target_gone_from_the_config_is_shown_but_not_checked(targets, mirror, tmp_path):
    assert run_cli("--config", str(targets), "sync", "sifts").code == 0
    smaller = write_config(
        tmp_path / "smaller.toml",
        tmp_path / "pdb",
        {"emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"}},
    )
    assert run_cli("--config", str(smaller), "sync", "emdb").code == 0
    result = run_cli("--config", str(smaller), "status", "--max-age", "1h", "--format", "json")
    assert result.code == 0, result.text
    rows = {row["name"]: row for row in json.loads(result.text)["targets"]}
    assert rows["sifts"]["in_config"] is False and rows["sifts"]["stale"] is None
    text = run_cli("--config", str(smaller), "status").text
    assert "sifts: in the history but not in the config" in text
    # named explicitly, it is checked
    assert run_cli("--config", str(smaller), "status", "sifts", "--max-age", "1h").code == 0


def test_an_unknown_name_is_a_usage_error(targets):
    result = run_cli("--config", str(targets), "status", "nope")
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and "unknown target 'nope'" in result.stderr


@pytest.mark.parametrize("value", ["36", "soon", "0h"])
def test_a_bad_max_age_is_one_line_exit_2(targets, value):
    result = run_cli("--config", str(targets), "status", "--max-age", value)
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and "--max-age" in result.stderr


def test_history_lists_runs_newest_first(targets):
    for names in (["sifts"], ["emdb"], ["sifts", "emdb"]):
        assert run_cli("--config", str(targets), "sync", *names).code == 0
    assert run_cli("--config", str(targets), "sync", "sifts", "--plan").code == 0
    runs = json.loads(run_cli("history", "--format", "json").text)
    assert [r["kind"] for r in runs] == ["plan", "sync", "sync", "sync"]
    assert [[t["name"] for t in r["targets"]] for r in runs[1:]] == [
        ["sifts", "emdb"],
        ["emdb"],
        ["sifts"],
    ]
    assert len(json.loads(run_cli("history", "--limit", "2", "--format", "json").text)) == 2
    sifts = json.loads(run_cli("history", "sifts", "--format", "json").text)
    assert [e["kind"] for e in sifts] == ["plan", "sync", "sync"]
    text = run_cli("history", "--limit", "1").text
    assert text.count("\n") == 1 and " plan " in text


def test_history_on_an_empty_state(targets):
    result = run_cli("history")
    assert result.code == 0 and result.text == "No runs recorded.\n"


def test_an_unwritable_state_dir_warns_but_the_run_succeeds(targets, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = run_cli(
        "--config",
        str(targets),
        "sync",
        "sifts",
        "--format",
        "json",
        environ={"PDB_SYNC_STATE_DIR": str(blocker / "state")},
    )
    assert result.code == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "not recorded" in warnings[0] and str(blocker) in warnings[0]
    assert all(json.loads(line) for line in result.stdout.splitlines())  # JSON only


def test_a_fail_fast_run_records_its_skipped_targets(targets):
    result = run_cli("--config", str(targets), "sync", "broken", "sifts", "--fail-fast")
    assert result.code == 1
    (run,) = state.last_runs()
    assert {t["name"]: t["status"] for t in run["targets"]} == {
        "broken": "failed",
        "sifts": "skipped",
    }


def test_an_interrupted_run_is_recorded_too(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"stuck": {"url": mirror.url("stall", "sifts/"), "dest": "stuck"}},
    )
    run = LiveRun("--config", str(config), "sync", "stuck", "--format", "json")
    run.wait_for(lambda e: e["type"] == "sync_started")
    run.proc.send_signal(signal.SIGTERM)
    code, _events, stderr = run.finish()
    assert code == 143, stderr
    (record,) = state.last_runs()
    assert record["interrupted"] == "SIGTERM" and record["exit_code"] == 143
    assert record["targets"][0]["status"] == "cancelled"


def test_max_age_says_never_synced_for_a_target_that_never_succeeded(targets):
    assert run_cli("--config", str(targets), "sync", "broken").code == 1
    result = run_cli("--config", str(targets), "status", "broken", "emdb", "--max-age", "1h")
    assert result.code == 1
    notes = result.text.split("\n\n", 1)[1].splitlines()
    assert "broken: STALE: never synced" in notes  # it ran, and failed every time
    assert notes.count("emdb: STALE: never synced") == 1  # it never ran: said once
    assert "emdb: never synced" not in notes
    assert not [note for note in notes if "older than" in note]


def test_a_huge_recorded_duration_prints_bounded(targets, _own_state_dir):
    assert run_cli("--config", str(targets), "sync", "sifts").code == 0
    index_path = _own_state_dir / state.INDEX_FILE
    index = orjson.loads(index_path.read_bytes())
    index["targets"]["sifts"]["last_success"]["duration_s"] = 1e305
    index_path.write_bytes(orjson.dumps(index))
    text = run_cli("--config", str(targets), "status", "sifts").text
    [row] = [line for line in text.splitlines() if line.startswith("sifts ")]
    assert row.split()[-4] == ">100y", row  # the TOOK column
    assert len(row) < 120, row
