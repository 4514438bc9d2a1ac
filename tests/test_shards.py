"""--shard: every job in exactly one shard, balanced by size; real sharded runs, merged."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from pdbsync.batch.shards import Shard, assign, resolve_shard, shard_of_task
from pdbsync.batch.slurm import SlurmJob, expand_path
from pdbsync.errors import UsageError

NAMES = [f"t{i}" for i in range(11)]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 11, 13])
def test_every_job_is_in_exactly_one_shard_and_counts_are_even(count):
    where = assign(NAMES, {}, count)
    assert set(where) == set(NAMES) and set(where.values()) <= set(range(1, count + 1))
    sizes = [list(where.values()).count(i) for i in range(1, count + 1)]
    assert max(sizes) - min(sizes) <= 1
    assert assign(list(reversed(NAMES)), {}, count) == where  # config order does not matter


def test_shards_are_balanced_by_expected_size():
    weights = {"huge": 100, "a": 30, "b": 30, "c": 30, "d": 10}
    where = assign(list(weights), weights, 2)
    loads = [sum(w for n, w in weights.items() if where[n] == i) for i in (1, 2)]
    assert sorted(loads) == [100, 100]


def test_array_tasks_number_their_shards():
    def task(task_id, count=3, low=0, step=None):
        return SlurmJob("9", "8", task_id, count, low, None, step)

    assert [shard_of_task(task(i)) for i in (0, 1, 2)] == [Shard(1, 3), Shard(2, 3), Shard(3, 3)]
    assert shard_of_task(task(5, low=5)) == Shard(1, 3)
    assert shard_of_task(task(4, low=0, step=2)) == Shard(3, 3)
    with pytest.raises(UsageError, match="cannot be numbered as a shard"):
        shard_of_task(task(3, low=0, step=2))
    assert shard_of_task(SlurmJob("9")) is None
    assert resolve_shard("none", task(1)) is None
    assert resolve_shard("2/5", task(1)) == Shard(2, 5)


def test_paths_expand_slurm_patterns():
    job = SlurmJob("101", "100", 2, 3, 0)
    assert expand_path("s-%A_%a-%j@%h%%.json", "--summary", job, "n1") == "s-100_2-101@n1%.json"
    with pytest.raises(UsageError, match="--events e-%x: unknown pattern %x"):
        expand_path("e-%x", "--events", job, "n1")
    with pytest.raises(UsageError, match="not a Slurm job"):
        expand_path("s-%j", "--summary", None, "n1")


def _slurm_env(task: int) -> dict[str, str]:
    return {
        "SLURM_JOB_ID": str(200 + task),
        "SLURM_ARRAY_JOB_ID": "200",
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_ARRAY_TASK_COUNT": "3",
        "SLURM_ARRAY_TASK_MIN": "0",
        "SLURM_JOB_END_TIME": "0",
    }


def test_three_array_tasks_run_each_target_once_and_merge(four_targets, tmp_path):
    for round_number in range(2):  # the second round has history: still one shard each
        files = []
        for task in range(3):
            pattern = str(tmp_path / f"r{round_number}-%A_%a.json")
            result = run_cli(
                "--config",
                str(four_targets),
                "sync",
                "--summary",
                pattern,
                environ=_slurm_env(task),
            )
            assert result.code == 0, result.stderr
            files.append(tmp_path / f"r{round_number}-200_{task}.json")
        shards = [json.loads(path.read_text()) for path in files]
        names = [r["name"] for shard in shards for r in shard["results"]]
        assert sorted(names) == ["emdb", "mmcif", "pdb", "sifts"]
        assert [s["shard"]["index"] for s in shards] == [1, 2, 3]
        assert shards[0]["shard"]["all_targets"] == ["mmcif", "pdb", "sifts", "emdb"]
        assert shards[1]["slurm"] == {"job_id": "201", "array_job_id": "200", "array_task_id": 1}
        out = tmp_path / f"merged{round_number}.json"
        merged = run_cli("summary", "merge", *map(str, files), "-o", str(out), "--format", "json")
        assert merged.code == 0, merged.stderr + merged.text
        data = json.loads(out.read_text())
        assert data["merge"]["complete"] and data["totals"]["succeeded"] == 4


def test_a_bad_shard_is_one_line_and_exit_2(four_targets):
    result = run_cli("--config", str(four_targets), "sync", "--shard", "0/3")
    assert result.code == 2
    assert (
        result.stderr
        == "pdb-sync: error: --shard 0/3: I must be between 1 and N, and N at least 1\n"
    )


def _array_env(task: int, **more: str) -> dict[str, str]:
    """An array task's environment with no SLURM_ARRAY_TASK_COUNT, plus ``more``."""
    return {
        "SLURM_JOB_ID": str(300 + task),
        "SLURM_ARRAY_JOB_ID": "300",
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_JOB_END_TIME": "0",
        **more,
    }


def test_without_a_task_count_the_shards_come_from_min_max_step(four_targets, tmp_path):
    """--array=0-4:2 as Slurm describes it, less SLURM_ARRAY_TASK_COUNT: tasks 0, 2, 4
    are shards 1, 2, 3 of 3, and together run every target once."""
    files = []
    for task in (0, 2, 4):
        env = _array_env(
            task, SLURM_ARRAY_TASK_MIN="0", SLURM_ARRAY_TASK_MAX="4", SLURM_ARRAY_TASK_STEP="2"
        )
        summary = tmp_path / f"s{task}.json"
        result = run_cli(
            "--config", str(four_targets), "sync", "--summary", str(summary), environ=env
        )
        assert result.code == 0, result.stderr
        files.append(json.loads(summary.read_text()))
    assert [(s["shard"]["index"], s["shard"]["count"]) for s in files] == [(1, 3), (2, 3), (3, 3)]
    names = [r["name"] for shard in files for r in shard["results"]]
    assert sorted(names) == ["emdb", "mmcif", "pdb", "sifts"]


@pytest.mark.parametrize(
    ("more", "missing"),
    [
        ({}, "MIN/MAX/STEP"),
        ({"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "4"}, "STEP"),
    ],
)
def test_an_array_task_without_a_count_or_its_range_is_refused(
    four_targets, tmp_path, more, missing
):
    summary = tmp_path / "s.json"
    env = _array_env(1, **more)
    result = run_cli("--config", str(four_targets), "sync", "--summary", str(summary), environ=env)
    assert result.code == 2
    assert result.stderr == (
        "pdb-sync: error: SLURM_ARRAY_TASK_ID=1 is set but SLURM_ARRAY_TASK_COUNT is not, nor "
        f"SLURM_ARRAY_TASK_{missing} to derive it from: this task's share of the targets is "
        "unknown; give --shard I/N (or --shard none)\n"
    )
    assert not summary.exists() and not (tmp_path / "pdb").exists()  # nothing ran
    given = run_cli("--config", str(four_targets), "sync", "--shard", "2/4", environ=env)
    assert given.code == 0, given.stderr  # an explicit --shard needs no count


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SLURM_ARRAY_TASK_ID", "²"),
        ("SLURM_ARRAY_TASK_ID", "٣"),
        ("SLURM_ARRAY_TASK_ID", "1_0"),
        ("SLURM_ARRAY_TASK_ID", " 1"),
        ("SLURM_ARRAY_TASK_COUNT", "99999999999999999999"),
        ("SLURM_JOB_END_TIME", "²"),
        ("SLURM_JOB_END_TIME", "99999999999999999999"),
    ],
)
def test_a_slurm_number_that_is_not_one_is_exit_2_naming_it(four_targets, variable, value):
    env = {**_slurm_env(1), variable: value}
    result = run_cli("--config", str(four_targets), "sync", environ=env)
    assert result.code == 2, result.stderr
    assert result.stderr.startswith(f"pdb-sync: error: {variable}={value!r}: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "text", ["\u0661/\u0663", "1/99999999999999999999", "1_0/20", "1/3 ", "1/3/4"]
)
def test_a_shard_in_other_digits_or_out_of_range_is_exit_2(four_targets, text):
    result = run_cli("--config", str(four_targets), "sync", "--shard", text)
    assert result.code == 2
    assert result.stderr.startswith("pdb-sync: error: --shard") and text in result.stderr
    assert result.stderr.count("\n") == 1
