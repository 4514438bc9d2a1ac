"""summary merge, --rerun-failed, --events and slurm script, against real runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import assert_valid_events, run_cli, write_config

from pdbsync import contracts


@pytest.fixture
def shard_files(four_targets, tmp_path) -> list[Path]:
    files = []
    for index in (1, 2, 3):
        path = tmp_path / f"s{index}.json"
        result = run_cli(
            "--config", str(four_targets), "sync", "--shard", f"{index}/3", "--summary", str(path)
        )
        assert result.code == 0, result.stderr
        files.append(path)
    return files


def _merge(*args: str):
    return run_cli("summary", "merge", *args, "--format", "json")


def test_a_missing_shard_and_its_targets_are_reported(shard_files):
    result = _merge(str(shard_files[0]), str(shard_files[2]))
    assert result.code == 1
    data = json.loads(result.stdout)
    assert not contracts.problems(data, "summary")
    assert data["merge"]["missing_shards"] == [2]
    second = json.loads(shard_files[1].read_text())
    assert data["merge"]["missing_targets"] == [r["name"] for r in second["results"]]
    assert not data["merge"]["complete"] and data["exit_code"] == 1


def test_a_duplicated_shard_and_its_targets_are_reported(shard_files):
    result = _merge(*map(str, shard_files), str(shard_files[0]))
    assert result.code == 1
    data = json.loads(result.stdout)
    first = json.loads(shard_files[0].read_text())
    assert data["merge"]["duplicated_shards"] == [1]
    assert data["merge"]["duplicated_targets"] == [r["name"] for r in first["results"]]
    assert len(data["results"]) == 4  # each target once in the results


def test_expect_names_shards_no_summary_mentions(shard_files):
    text = run_cli("summary", "merge", *map(str, shard_files), "--expect", "4")
    assert text.code == 1
    assert "missing shards: 4" in text.text and "Merged 3 of 4 shards" in text.text


def test_an_invalid_input_is_one_line_and_exit_2(shard_files, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"v": 1}')
    result = run_cli("summary", "merge", str(shard_files[0]), str(bad))
    assert result.code == 2
    assert result.stderr.startswith(f"pdb-sync: error: summary merge {bad}: not a valid")
    assert result.stderr.count("\n") == 1


def test_rerun_failed_runs_only_what_did_not_succeed(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "good": {"url": mirror.url("ftp_data", "sifts/"), "dest": "good"},
            "bad": {"url": mirror.url("ftp_data", "no/such/dir/"), "dest": "bad"},
        },
    )
    first = run_cli("--config", str(config), "sync", "--summary", str(tmp_path / "1.json"))
    assert first.code == 1
    again = run_cli(
        "--config",
        str(config),
        "sync",
        "--rerun-failed",
        str(tmp_path / "1.json"),
        "--format",
        "json",
    )
    assert again.code == 1
    assert [r["name"] for r in again.events[-1]["summary"]["results"]] == ["bad"]
    names = run_cli("--config", str(config), "sync", "good", "--rerun-failed", "x.json")
    assert names.code == 2 and "--rerun-failed picks the targets" in names.stderr


def test_rerun_failed_of_a_clean_run_runs_nothing(four_targets, tmp_path):
    summary = tmp_path / "ok.json"
    assert run_cli("--config", str(four_targets), "sync", "--summary", str(summary)).code == 0
    again = run_cli("--config", str(four_targets), "sync", "--rerun-failed", str(summary))
    assert again.code == 0 and "Total: 0" in again.text


def test_events_go_to_the_file_whatever_the_format(four_targets, tmp_path):
    events_file = tmp_path / "logs" / "events.jsonl"
    result = run_cli("--config", str(four_targets), "sync", "mmcif", "--events", str(events_file))
    assert result.code == 0, result.stderr
    assert result.text.startswith("Syncing 1 target")  # stdout stays text
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert_valid_events(events)
    assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_finished"
    assert events[0]["host"] and events[0]["shard"] is None


def test_an_events_path_that_cannot_be_written_is_exit_2(four_targets, tmp_path):
    result = run_cli("--config", str(four_targets), "sync", "--events", str(tmp_path))
    assert result.code == 2
    assert (
        result.stderr
        == f"pdb-sync: error: --events {tmp_path}: is a directory; give the path of a file\n"
    )


def test_slurm_script_does_what_slurm_needs(tmp_path):
    result = run_cli(
        "--config",
        "c.toml",
        "slurm",
        "script",
        "--array",
        "3",
        "--partition",
        "short",
        "--account",
        "lab",
        "--time",
        "02:00:00",
    )
    assert result.code == 0, result.stderr
    script = result.text
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --signal=B:TERM@120" in directives
    assert "#SBATCH --array=0-2" in directives and "#SBATCH --time=02:00:00" in directives
    assert "#SBATCH --output=logs/pdb-sync-%A_%a.out" in directives
    assert "#SBATCH --error=logs/pdb-sync-%A_%a.err" in directives
    assert {"#SBATCH --partition=short", "#SBATCH --account=lab"} <= set(directives)
    body = [line for line in script.splitlines() if not line.startswith("#")]
    assert any(line.startswith("exec pdb-sync") for line in body)
    assert f"--config {Path('c.toml').resolve()}" in script  # tasks may start elsewhere
    assert "--dependency=afterany:" in script and "summary merge --expect 3" in script
    assert "--summary logs/pdb-sync-%A_%a.json" in script
    assert "--events logs/pdb-sync-%A_%a.events.jsonl" in script
    # every directive is explained by a comment just above it
    lines = script.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("#SBATCH") and not line.startswith(
            ("#SBATCH --partition", "#SBATCH --account")
        ):
            assert lines[number - 1].startswith("# "), line
    path = tmp_path / "job.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
