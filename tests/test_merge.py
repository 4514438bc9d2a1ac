"""summary merge, --rerun-failed, --events and slurm script, against real runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import assert_valid_events, run_cli, write_config

from pdbsync import contracts
from pdbsync.batch.shards import MAX_SHARDS
from pdbsync.errors import UsageError
from pdbsync.report import merge


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


def _refused(*args: str) -> str:
    """Run ``summary merge ARGS``; assert exit 2 with one line, and return that line."""
    result = run_cli("summary", "merge", *args)
    assert result.code == 2, result.stderr + result.text
    assert result.stderr.count("\n") == 1 and result.stdout == b""
    return result.stderr


def _array(config: Path, tmp_path: Path, job: int) -> list[Path]:
    """The summaries of a 3-task array job ``job`` (its tasks run here, one by one)."""
    files = []
    for task in range(3):
        env = {
            "SLURM_JOB_ID": str(job + 1 + task),
            "SLURM_ARRAY_JOB_ID": str(job),
            "SLURM_ARRAY_TASK_ID": str(task),
            "SLURM_ARRAY_TASK_COUNT": "3",
            "SLURM_ARRAY_TASK_MIN": "0",
            "SLURM_JOB_END_TIME": "0",
        }
        path = tmp_path / f"a-{job}_{task}.json"
        result = run_cli("--config", str(config), "sync", "--summary", str(path), environ=env)
        assert result.code == 0, result.stderr
        files.append(path)
    return files


def test_shards_of_different_array_jobs_are_refused(four_targets, tmp_path):
    first, second = _array(four_targets, tmp_path, 100), _array(four_targets, tmp_path, 200)
    line = _refused(str(first[0]), str(second[1]), str(first[2]))
    assert line == (
        f"pdb-sync: error: summary merge: {first[0]} is from array job 100, {second[1]} "
        "from array job 200: shards of different runs\n"
    )
    merged = run_cli("summary", "merge", *map(str, second))  # one job's shards: as before
    assert merged.code == 0, merged.stderr


def test_shards_of_different_counts_are_refused(shard_files, four_targets, tmp_path):
    other = tmp_path / "two.json"
    ran = run_cli("--config", str(four_targets), "sync", "--shard", "2/2", "--summary", str(other))
    assert ran.code == 0, ran.stderr
    line = _refused(str(shard_files[0]), str(other))
    assert line == (
        f"pdb-sync: error: summary merge: {shard_files[0]} is shard 1/3, {other} is shard "
        "2/2: the counts differ\n"
    )


def test_the_same_shard_twice_is_refused(shard_files, tmp_path):
    again = tmp_path / "again.json"
    again.write_bytes(shard_files[0].read_bytes())  # a second summary of shard 1/3
    line = _refused(*map(str, shard_files), str(again))
    assert line == (
        f"pdb-sync: error: summary merge: {shard_files[0]} and {again} are both shard 1/3\n"
    )
    line = _refused(*map(str, shard_files), str(shard_files[1]))
    assert line == f"pdb-sync: error: summary merge: {shard_files[1]} is given twice\n"


def test_a_shard_past_its_count_is_refused(shard_files, tmp_path):
    data = json.loads(shard_files[2].read_text())
    data["shard"]["index"] = 5
    bad = tmp_path / "s5.json"
    bad.write_text(json.dumps(data))
    line = _refused(str(shard_files[0]), str(shard_files[1]), str(bad))
    assert line == (
        f"pdb-sync: error: summary merge: {bad} says shard 5/3: an index past the count\n"
    )


@pytest.mark.parametrize("expect", ["2", "4"])
def test_an_expect_that_disagrees_with_the_shards_is_refused(shard_files, expect):
    line = _refused(*map(str, shard_files), "--expect", expect)
    assert line == (
        f"pdb-sync: error: summary merge: --expect {expect}, but {shard_files[0]} is shard "
        "1/3: the shards say 3\n"
    )


def test_an_output_that_is_one_of_the_inputs_is_refused_and_kept(shard_files):
    before = shard_files[1].read_bytes()
    line = _refused(*map(str, shard_files), "-o", str(shard_files[1]))
    assert line == (
        f"pdb-sync: error: summary merge: -o {shard_files[1]} is also one of its inputs "
        f"({shard_files[1]}); the merge would replace it: write it elsewhere\n"
    )
    assert shard_files[1].read_bytes() == before


def test_expect_counts_unsharded_summaries(four_targets, tmp_path):
    files = []
    for name in ("mmcif", "pdb"):
        path = tmp_path / f"{name}.json"
        ran = run_cli("--config", str(four_targets), "sync", name, "--summary", str(path))
        assert ran.code == 0, ran.stderr
        files.append(str(path))
    text = run_cli("summary", "merge", *files, "--expect", "3")
    assert text.code == 1
    assert "missing shards: 3" in text.text and "Merged 2 of 3 shards" in text.text
    line = _refused(*files, "--expect", "1")
    assert line == (
        f"pdb-sync: error: summary merge: --expect 1, but 2 summaries are given "
        f"({files[0]}, {files[1]})\n"
    )


def _one_target(config: Path, tmp_path: Path) -> Path:
    """The summary of an unsharded run of one target."""
    path = tmp_path / "mmcif.json"
    ran = run_cli("--config", str(config), "sync", "mmcif", "--summary", str(path))
    assert ran.code == 0, ran.stderr
    return path


@pytest.mark.parametrize("expect", ["99999999999999", str(MAX_SHARDS + 1)])
def test_an_expect_over_the_most_shards_is_refused(four_targets, tmp_path, expect):
    """Was exit 70 (MemoryError: the missing shards 2..N as a list), or a merge "of
    4000002 shards" no array can have."""
    summary = _one_target(four_targets, tmp_path)
    line = _refused(str(summary), "--expect", expect)
    assert line == (
        f"pdb-sync: error: summary merge: argument --expect: must be between 1 and "
        f"{MAX_SHARDS}, got {expect} (see 'pdb-sync summary merge --help')\n"
    )
    with pytest.raises(UsageError, match=f"--expect {expect}: must be between 1 and"):
        merge.merge(merge.load_shards([summary]), int(expect))  # the library's way in


@pytest.mark.parametrize(("index", "count"), [(1, 10**15), (1, MAX_SHARDS + 1), (10**15, 10**15)])
def test_a_shard_count_over_the_most_shards_is_refused(shard_files, tmp_path, index, count):
    """Was exit 70 (out of memory listing shards 2..10**15 as missing)."""
    data = json.loads(shard_files[0].read_text())
    data["shard"].update(index=index, count=count)
    bad = tmp_path / "huge.json"
    bad.write_text(json.dumps(data))
    line = _refused(str(bad))
    assert line == (
        f"pdb-sync: error: summary merge: {bad} says shard {index}/{count}: more shards "
        f"than the {MAX_SHARDS} a Slurm array can have\n"
    )


def test_a_complete_merge_has_no_duplicated_shards(shard_files):
    """The field stays for readers of older merges; one shard twice is refused."""
    result = _merge(*map(str, shard_files))
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["merge"]["duplicated_shards"] == [] and data["merge"]["complete"]
    assert data["merge"]["missing_shards"] == []


def test_an_invalid_input_is_one_line_and_exit_2(shard_files, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"v": 1}')
    result = run_cli("summary", "merge", str(shard_files[0]), str(bad))
    assert result.code == 2
    assert result.stderr.startswith(f"pdb-sync: error: summary merge {bad}: not a valid")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("where", "stamp"),
    [
        (("finished_at",), "2026-13-45T00:00:00Z"),
        (("results", 0, "started_at"), "\u0662\u0660\u0662\u0666-01-01T00:00:00Z"),
    ],
)
def test_a_stamp_that_is_no_time_is_one_line_and_exit_2(shard_files, tmp_path, where, stamp):
    """The schema's pattern lets these through (``\\d`` is any script's digit in Python);
    the merge computed the run's duration from them and crashed (exit 70)."""
    data = json.loads(shard_files[1].read_text())
    *parents, key = where
    holder = data
    for step in parents:
        holder = holder[step]
    holder[key] = stamp
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = run_cli("summary", "merge", str(shard_files[0]), str(bad))
    assert result.code == 2, result.stderr
    path = ".".join(str(step) for step in where).replace(".0.", "[0].")
    assert result.stderr == (
        f"pdb-sync: error: summary merge {bad}: not a valid pdb-sync summary: {path}: "
        f"expected an ISO 8601 time such as 2026-01-01T12:00:00Z, got {stamp!r}\n"
    )


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


def test_rerun_failed_of_a_merge_missing_a_shard_runs_its_targets(
    shard_files, four_targets, tmp_path
):
    merged = tmp_path / "merged.json"
    result = run_cli(
        "summary", "merge", str(shard_files[0]), str(shard_files[2]), "-o", str(merged)
    )
    assert result.code == 1  # shard 2 never reported
    unreported = [r["name"] for r in json.loads(shard_files[1].read_text())["results"]]
    pdb = tmp_path / "pdb"
    shutil.rmtree(pdb)  # so what the rerun syncs is on disk again
    again = run_cli(
        "--config", str(four_targets), "sync", "--rerun-failed", str(merged), "--format", "json"
    )
    assert again.code == 0, again.stderr
    assert again.stderr == (
        f"pdb-sync: note: --rerun-failed {merged}: shards 2 of 3 are missing from the merge; "
        f"no shard reported {', '.join(unreported)}: rerun too\n"
    )
    summary = again.events[-1]["summary"]
    assert [r["name"] for r in summary["results"]] == unreported
    assert {r["status"] for r in summary["results"]} == {"success"}
    config = tomllib.loads(four_targets.read_text())["sync"]["custom"]
    synced = {name for name, target in config.items() if (pdb / target["dest"]).is_dir()}
    assert synced == set(unreported)


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
