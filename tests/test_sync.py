"""End-to-end syncs: real rsync against the real local daemon, through the real pool."""

from __future__ import annotations

import filecmp
import itertools
import json
from datetime import datetime
from pathlib import Path

from conftest import assert_valid_events, run_cli, write_config

from pdbsync import contracts
from pdbsync.rsync import output as rsync_output


def _tree_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _same_tree(left: Path, right: Path) -> bool:
    files = _tree_files(left)
    assert files, f"no files under {left}"
    assert files == _tree_files(right)
    _match, mismatch, errors = filecmp.cmpfiles(left, right, files, shallow=False)
    return not mismatch and not errors


def _intervals(events: list[dict]) -> dict[str, tuple[datetime, datetime]]:
    def when(event: dict) -> datetime:
        return datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))

    starts = {e["name"]: when(e) for e in events if e["type"] == "sync_started"}
    ends = {e["name"]: when(e) for e in events if e["type"] == "sync_finished"}
    assert starts.keys() == ends.keys()
    return {name: (starts[name], ends[name]) for name in starts}


def test_all_targets_arrive_byte_identical(four_targets, archive, tmp_path):
    result = run_cli("--config", str(four_targets), "sync", "--all")
    assert result.code == 0, result.stderr
    pdb = tmp_path / "pdb"
    assert _same_tree(archive / "structures/divided/mmCIF", pdb / "structures/divided/mmCIF")
    assert _same_tree(archive / "structures/divided/pdb", pdb / "structures/divided/pdb")
    assert _same_tree(archive / "sifts", pdb / "sifts")
    assert _same_tree(archive / "emdb", pdb / "emdb")


def test_one_named_target_syncs_only_that_one(four_targets, archive, tmp_path):
    result = run_cli("--config", str(four_targets), "sync", "sifts")
    assert result.code == 0, result.stderr
    assert _same_tree(archive / "sifts", tmp_path / "pdb" / "sifts")
    assert not (tmp_path / "pdb" / "emdb").exists()


def _slow_config(mirror, tmp_path, count=3):
    return write_config(
        tmp_path / "slow.toml",
        tmp_path / "pdb",
        {f"t{i}": {"url": mirror.url("slow", "sifts/"), "dest": f"t{i}"} for i in range(count)},
    )


def test_parallel_three_really_overlaps(mirror, tmp_path):
    config = _slow_config(mirror, tmp_path)
    result = run_cli(
        "--config", str(config), "sync", "--all", "--parallel", "3", "--format", "json"
    )
    assert result.code == 0, result.stderr
    spans = _intervals(result.events).values()
    latest_start = max(start for start, _ in spans)
    earliest_end = min(end for _, end in spans)
    assert latest_start < earliest_end, "the three transfers never ran at the same time"


def test_parallel_one_never_overlaps(mirror, tmp_path):
    config = _slow_config(mirror, tmp_path)
    result = run_cli("--config", str(config), "sync", "--all", "--format", "json")
    assert result.code == 0, result.stderr
    spans = sorted(_intervals(result.events).values())
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end <= next_start


def test_failing_target_reported_while_others_succeed(mirror, tmp_path):
    config = write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "good": {"url": mirror.url("ftp_data", "sifts/"), "dest": "good"},
            "broken": {"url": mirror.url("no_such_module", "x/"), "dest": "broken"},
            "also-good": {"url": mirror.url("ftp_data", "emdb/"), "dest": "also-good"},
        },
    )
    summary_path = tmp_path / "out" / "summary.json"
    result = run_cli(
        "--config", str(config), "sync", "--all", "--parallel", "3", "--summary", str(summary_path)
    )
    assert result.code == 1
    summary = json.loads(summary_path.read_text())
    by_name = {r["name"]: r for r in summary["results"]}
    assert by_name["good"]["status"] == "success"
    assert by_name["also-good"]["status"] == "success"
    assert by_name["broken"]["status"] == "failed"
    assert by_name["broken"]["exit_code"] == 5
    assert "Unknown module" in by_name["broken"]["error"]
    assert summary["totals"]["failed"] == 1 and summary["totals"]["succeeded"] == 2
    assert "[broken] FAILED (exit 5)" in result.text
    assert "  broken: exit 5 (error starting client-server protocol)" in result.text


def test_json_mode_every_line_and_summary_validate(four_targets, tmp_path):
    summary_path = tmp_path / "summary.json"
    result = run_cli(
        "--config",
        str(four_targets),
        "sync",
        "--all",
        "--parallel",
        "4",
        "--format",
        "json",
        "--summary",
        str(summary_path),
    )
    assert result.code == 0, result.stderr
    events = result.events  # every line parses as JSON, or this raises
    assert_valid_events(events)
    assert events[0]["type"] == "run_started"
    assert events[-1]["type"] == "run_finished"
    assert {e["type"] for e in events} >= {"sync_started", "output", "sync_finished"}
    written = json.loads(summary_path.read_text())
    assert not contracts.problems(written, "summary")
    assert written == events[-1]["summary"]
    sifts = next(r for r in written["results"] if r["name"] == "sifts")
    assert sifts["files_transferred"] == len(list((tmp_path / "pdb/sifts").rglob("*.gz")))
    assert sifts["stats"]["files_created"] > 0


def test_second_run_transfers_nothing(four_targets, tmp_path):
    assert run_cli("--config", str(four_targets), "sync", "--all").code == 0
    summary_path = tmp_path / "again.json"
    assert (
        run_cli("--config", str(four_targets), "sync", "--all", "--summary", str(summary_path)).code
        == 0
    )
    totals = json.loads(summary_path.read_text())["totals"]
    assert totals["files_transferred"] == 0 and totals["bytes_transferred"] == 0


def test_text_mode_prefixes_every_rsync_line(four_targets):
    result = run_cli("--config", str(four_targets), "sync", "--all", "--parallel", "2")
    assert result.code == 0, result.stderr
    body, _, block = result.text.partition("\n=== Sync Summary ===\n")
    lines = body.splitlines()
    assert lines[0].startswith("Syncing 4 targets")
    rsync_lines = [line for line in lines[1:] if line.strip()]
    assert any("Completed in" in line for line in rsync_lines)
    names = ("[mmcif] ", "[pdb] ", "[sifts] ", "[emdb] ")
    assert all(line.startswith(names) for line in rsync_lines), rsync_lines
    assert "Total: 4 | Success: 4 | Failed: 0" in block
    assert "All syncs completed successfully." in block


def test_progress_redraws_become_parsed_progress_events(four_targets):
    result = run_cli("--config", str(four_targets), "sync", "mmcif", "--format", "json")
    progress = [e for e in result.events if e["type"] == "progress"]
    assert progress, "no progress event from --info=progress2"
    assert progress[-1]["percent"] == 100
    assert all(
        not e["line"].lstrip()[:1].isdigit() or "%" not in e["line"]
        for e in result.events
        if e["type"] == "output"
    )


def test_dest_override_moves_the_mirror_root(four_targets, tmp_path, archive):
    other = tmp_path / "elsewhere"
    result = run_cli("--config", str(four_targets), "sync", "emdb", "--dest", str(other))
    assert result.code == 0, result.stderr
    assert _same_tree(archive / "emdb", other / "emdb")


def test_completed_lines_and_summary_carry_the_key_stats(four_targets, archive, tmp_path):
    summary_path = tmp_path / "summary.json"
    result = run_cli(
        "--config", str(four_targets), "sync", "sifts", "emdb", "--summary", str(summary_path)
    )
    assert result.code == 0, result.stderr
    sifts_files = [p for p in (archive / "sifts").rglob("*") if p.is_file()]
    sifts_bytes = sum(p.stat().st_size for p in sifts_files)
    completed = next(line for line in result.text.splitlines() if line.startswith("[sifts] Comp"))
    assert f"transferred {len(sifts_files)} files, {sifts_bytes / 1000:.1f} kB at " in completed
    assert f"source {len(list((archive / 'sifts').rglob('*'))) + 1} files" in completed
    summary = json.loads(summary_path.read_text())
    sifts = next(r for r in summary["results"] if r["name"] == "sifts")
    assert set(sifts["stats"]) == set(rsync_output.STATS_FIELDS)
    assert sifts["stats"]["files_total_by_type"]["reg"] == len(sifts_files)
    totals = summary["totals"]
    assert totals["files_created"] == sum(r["stats"]["files_created"] for r in summary["results"])
    block = result.text.partition("=== Sync Summary ===")[2]
    assert f"Transferred: {totals['files_transferred']:,} files, " in block
    assert f"Created: {totals['files_created']:,} | Deleted: 0" in block
