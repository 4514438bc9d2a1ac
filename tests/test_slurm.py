"""pdb-sync on a real single-node Slurm cluster: an array made by ``pdb-sync slurm
script``, merged by its own merge job; ``scancel`` and a time limit mid-transfer.

The cluster (tests/slurm_cluster.py) runs Debian's slurm-wlm and munge on 127.0.0.1.
The time-limit job needs a minute of Slurm's clock at least, so it is submitted first
and the other cases run meanwhile.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from conftest import assert_valid_events, run_cli, wait_until_none_mention, write_config
from local_mirror import LocalMirror
from slurm_cluster import SlurmCluster, missing_reason

from pdbsync import contracts

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> SlurmCluster:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(f"no Slurm cluster can be started here: {reason}")
    started = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    yield started
    started.stop()


def _poll(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


def _script(config: Path, work: Path, *args: str) -> Path:
    made = run_cli("--config", str(config), "slurm", "script", *args, "--logs", str(work / "logs"))
    assert made.code == 0, made.stderr
    (work / "logs").mkdir(parents=True, exist_ok=True)
    script = work / "job.sh"
    script.write_bytes(made.stdout)
    return script


def _summary(path: Path) -> dict:
    data = orjson.loads(path.read_bytes())
    assert not contracts.problems(data, "summary"), contracts.problems(data, "summary")
    return data


def _events(path: Path) -> list[dict]:
    events = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert_valid_events(events)
    return events


def _same_tree(left: Path, right: Path) -> bool:
    compared = filecmp.dircmp(left, right, ignore=[".rsync-partial"])
    if compared.left_only or compared.right_only or compared.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, compared.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(_same_tree(left / d, right / d) for d in compared.common_dirs)


@pytest.fixture(scope="module")
def long_mirror(tmp_path_factory: pytest.TempPathFactory) -> LocalMirror:
    """A daemon serving one 4 MiB file at 40 KiB/s: a transfer of about 100 s, under way
    whenever Slurm stops the job."""
    root = tmp_path_factory.mktemp("long")
    (root / "big").mkdir()
    (root / "big" / "blob.bin").write_bytes(os.urandom(4 << 20))
    local = LocalMirror(root, tmp_path_factory.mktemp("longd"), daemon_args=("--bwlimit=40",))
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def time_limited(cluster: SlurmCluster, long_mirror: LocalMirror, tmp_path_factory):
    """A job with a one-minute limit whose transfer would take longer; submitted first."""
    work = tmp_path_factory.mktemp("timelimit")
    config = write_config(
        work / "c.toml",
        work / "pdb",
        {"big": {"url": long_mirror.url("ftp_data", "big/"), "dest": "big"}},
    )
    script = _script(
        config,
        work,
        "--time",
        "1",
        "--signal-before",
        "0",
        "--parallel",
        "1",
        "--sync-arg=--deadline=none",  # only Slurm's own limit stops it
    )
    return work, cluster.sbatch(script, cwd=work), time.monotonic()


def test_an_array_made_by_slurm_script_syncs_every_target_once(
    cluster, time_limited, four_targets, archive, tmp_path
):
    script = _script(four_targets, tmp_path, "--array", "3", "--time", "5", "--parallel", "2")
    submitted = cluster.sbatch(script, cwd=tmp_path)
    out, err = submitted.communicate(timeout=120)
    assert submitted.returncode == 0, (out, err)
    array_id = out.split(";")[0].strip()
    logs = tmp_path / "logs"
    merged_path = logs / f"pdb-sync-{array_id}.json"
    _poll(merged_path.exists, 60, "the merge job's summary")
    merged = _summary(merged_path)
    names = [result["name"] for result in merged["results"]]
    assert sorted(names) == ["emdb", "mmcif", "pdb", "sifts"]  # each exactly once
    assert {result["status"] for result in merged["results"]} == {"success"}
    info = merged["merge"]
    assert info["complete"] and info["expected_shards"] == 3
    assert sorted(shard["index"] for shard in info["shards"]) == [1, 2, 3]
    tasks = sorted(shard["slurm"]["array_task_id"] for shard in info["shards"])
    assert tasks == [0, 1, 2]
    assert {shard["slurm"]["array_job_id"] for shard in info["shards"]} == {array_id}
    assert {shard["host"] for shard in info["shards"]} == {cluster.host}
    assert merged["exit_code"] == 0
    for task in range(3):
        stem = logs / f"pdb-sync-{array_id}_{task}"
        events = _events(stem.with_suffix(".events.jsonl"))
        assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_finished"
        assert events[0]["slurm"]["array_task_id"] == task
        assert "Traceback" not in stem.with_suffix(".err").read_text()
        assert not stem.with_suffix(".out").read_text().startswith("{")  # text for people
    pdb = tmp_path / "pdb"
    for source, dest in (
        ("structures/divided/mmCIF", "structures/divided/mmCIF"),
        ("structures/divided/pdb", "structures/divided/pdb"),
        ("sifts", "sifts"),
        ("emdb", "emdb"),
    ):
        assert _same_tree(archive / source, pdb / dest), dest


def test_array_tasks_without_a_task_count_each_run_their_share_once(
    cluster, time_limited, four_targets, archive, tmp_path
):
    """``--array=0-4:2`` with SLURM_ARRAY_TASK_COUNT unset in the job: each task derives
    its shard from Slurm's MIN/MAX/STEP, and the three run every target once."""
    logs = tmp_path / "logs"
    logs.mkdir()
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --array=0-4:2\n"
        f"#SBATCH --output={logs}/%A_%a.out\n"
        f"#SBATCH --error={logs}/%A_%a.err\n"
        "unset SLURM_ARRAY_TASK_COUNT\n"
        f'echo "${{SLURM_ARRAY_TASK_COUNT-unset}} ${{SLURM_ARRAY_TASK_MIN}} '
        f'${{SLURM_ARRAY_TASK_MAX}} ${{SLURM_ARRAY_TASK_STEP}}" > {logs}/env-$SLURM_ARRAY_TASK_ID\n'
        f"exec pdb-sync --config {four_targets} sync --summary '{logs}/s-%A_%a.json'\n"
    )
    submitted = cluster.sbatch(script, cwd=tmp_path)
    out, err = submitted.communicate(timeout=120)
    assert submitted.returncode == 0, (out, err, [p.read_text() for p in logs.glob("*.err")])
    array_id = out.split(";")[0].strip()
    for task in (0, 2, 4):
        assert (logs / f"env-{task}").read_text().split() == ["unset", "0", "4", "2"]
    shards = [_summary(logs / f"s-{array_id}_{task}.json") for task in (0, 2, 4)]
    assert [(s["shard"]["index"], s["shard"]["count"]) for s in shards] == [(1, 3), (2, 3), (3, 3)]
    names = [result["name"] for shard in shards for result in shard["results"]]
    assert sorted(names) == ["emdb", "mmcif", "pdb", "sifts"]  # each exactly once
    assert {result["status"] for shard in shards for result in shard["results"]} == {"success"}


def _wait_for_progress(events_file: Path) -> None:
    def transferring() -> bool:
        try:
            return b'"type":"progress"' in events_file.read_bytes()
        except OSError:
            return False

    _poll(transferring, 60, f"progress in {events_file}")


def test_scancel_mid_transfer_leaves_a_cancelled_summary_and_nothing_running(
    cluster, time_limited, long_mirror, mirror, tmp_path
):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "big": {"url": long_mirror.url("ftp_data", "big/"), "dest": "big"},
            "stalled": {"url": mirror.url("stall", "sifts/"), "dest": "stalled"},
        },
    )
    script = _script(config, tmp_path, "--time", "5", "--parallel", "2")
    submitted = cluster.sbatch(script, cwd=tmp_path)
    job_id = submitted.stdout.readline().split(";")[0].strip()
    stem = tmp_path / "logs" / f"pdb-sync-{job_id}"
    _wait_for_progress(stem.with_suffix(".events.jsonl"))
    cluster.scancel(job_id)
    record = cluster.final_state(job_id)
    submitted.communicate(timeout=60)
    # what Slurm recorded: the batch script (pdb-sync, exec'd) exited 143, no signal: it
    # stopped by itself within KillWait (SIGKILLed after it, Slurm would record "0:9")
    assert (record["JobState"], record["ExitCode"]) == ("CANCELLED", "143:0"), record
    summary = _summary(stem.with_suffix(".json"))
    assert summary["interrupted"] == "SIGTERM" and summary["exit_code"] == 143
    assert {r["status"] for r in summary["results"]} == {"cancelled"}
    big = next(r for r in summary["results"] if r["name"] == "big")
    assert big["bytes_transferred"] and big["bytes_transferred"] > 0
    assert summary["slurm"]["job_id"] == job_id
    events = _events(stem.with_suffix(".events.jsonl"))
    assert "Slurm job" in events[0]["deadline"]["source"]  # the job's end, from squeue
    assert events[-1]["type"] == "run_finished"
    assert "Traceback" not in stem.with_suffix(".err").read_text()
    survivors = wait_until_none_mention(str(tmp_path))
    assert not survivors, f"outlived the job: {survivors}"


def test_the_time_limit_mid_transfer_leaves_a_cancelled_summary_and_nothing_running(
    cluster, time_limited
):
    work, submitted, started = time_limited
    job_id = submitted.stdout.readline().split(";")[0].strip()
    record = cluster.final_state(job_id, timeout=150)
    submitted.communicate(timeout=60)
    assert time.monotonic() - started >= 60  # Slurm's limit stopped it, nothing earlier
    # what Slurm recorded: the batch script (pdb-sync, exec'd) exited 143, no signal
    assert (record["JobState"], record["ExitCode"]) == ("TIMEOUT", "143:0"), record
    stem = work / "logs" / f"pdb-sync-{job_id}"
    summary = _summary(stem.with_suffix(".json"))
    assert summary["interrupted"] == "SIGTERM" and summary["exit_code"] == 143
    [big] = summary["results"]
    assert big["status"] == "cancelled" and big["bytes_transferred"] > 0
    assert _events(stem.with_suffix(".events.jsonl"))[-1]["type"] == "run_finished"
    survivors = wait_until_none_mention(str(work))
    assert not survivors, f"outlived the job: {survivors}"


#: A job name and account no shell may run, and logs in a directory named like them;
#: each command would create ``hostile-N`` in the job's directory.
HOSTILE_NAME = "pdb $(touch hostile-1) `touch hostile-2`; touch hostile-3 \"q\" 'q' #x 50% a\\b"
HOSTILE_ACCOUNT = "lab $(touch hostile-4) 'x' \"y\" #z"
HOSTILE_LOGS = "logs $(touch hostile-5) 'l' \"l\" #%A"


def _queued(cluster: SlurmCluster, job_id: str | None = None) -> dict[str, list[str]]:
    """Each queued job's name, account, partition and time limit, by job id (a tab cannot
    be in a value: ``slurm script`` refuses control characters)."""
    argv = ["squeue", "--noheader", "--format=%i\t%j\t%a\t%P\t%l"]
    shown = cluster.run(*argv, *(("--jobs", job_id) if job_id else ()))
    return {line.split("\t")[0]: line.split("\t")[1:] for line in shown.splitlines()}


def test_a_script_with_hostile_values_runs_none_of_them_and_slurm_records_them_as_given(
    cluster, mirror, tmp_path
):
    config = write_config(
        tmp_path / "c $(touch hostile-6) 'c'.toml",
        tmp_path / "pdb",
        {
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"},
            "emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"},
        },
    )
    logs = tmp_path / HOSTILE_LOGS
    made = run_cli(
        *("--config", str(config), "slurm", "script", "--array", "2", "--time", "00:05:00"),
        *("--job-name", HOSTILE_NAME, "--account", HOSTILE_ACCOUNT, "--logs", str(logs)),
    )
    assert made.code == 0, made.stderr
    logs.mkdir()
    script = tmp_path / "job.sh"
    script.write_bytes(made.stdout)
    # SBATCH_HOLD holds the array and, through the job's environment, the merge job its
    # first task submits: each is read back from Slurm before it is released.
    submitted = cluster.sbatch(script, cwd=tmp_path, env={"SBATCH_HOLD": "1"})
    array_id = submitted.stdout.readline().split(";")[0].strip()
    assert array_id, submitted.communicate(timeout=30)[1]  # sbatch's complaint
    [array] = _queued(cluster, array_id).values()
    assert array == [HOSTILE_NAME, HOSTILE_ACCOUNT, "debug", "5:00"]
    cluster.run("scontrol", "release", array_id)

    def merge_job() -> str | None:
        shown = cluster.run("squeue", "--noheader", "--format=%i %E").splitlines()
        after = [line.split()[0] for line in shown if f"afterany:{array_id}" in line]
        return after[0] if after else None

    merge_id = _poll(merge_job, 60, "the merge job, held")
    assert _queued(cluster, merge_id)[merge_id] == [
        f"{HOSTILE_NAME}-merge",
        HOSTILE_ACCOUNT,
        "debug",
        "10:00",
    ]
    cluster.run("scontrol", "release", merge_id)
    out, err = submitted.communicate(timeout=120)
    assert submitted.returncode == 0, (out, err)
    stem = str(
        logs / "pdb $(touch hostile-1) `touch hostile-2`; touch hostile-3 \"q\" 'q' #x 50% a_b"
    )
    merged_path = Path(f"{stem}-{array_id}.json")
    _poll(merged_path.exists, 60, "the merge job's summary")
    merged = _summary(merged_path)
    assert sorted(result["name"] for result in merged["results"]) == ["emdb", "sifts"]
    assert merged["merge"]["complete"] and merged["exit_code"] == 0
    for task in (0, 1):
        for suffix in (".out", ".err", ".json", ".events.jsonl"):
            assert Path(f"{stem}-{array_id}_{task}{suffix}").is_file(), suffix
    assert Path(f"{stem}-{array_id}-merge.out").is_file()
    assert not list(tmp_path.rglob("hostile-*"))


@pytest.mark.parametrize(
    ("flag", "value", "complaint"),
    [
        # the test cluster has one partition, debug: sbatch naming the one asked for, whole,
        # shows it read that value as one word
        (
            "--partition",
            "io $(touch hostile-1) #p 'q' \"q\"",
            "sbatch: error: invalid partition specified: io $(touch hostile-1) #p 'q' \"q\"",
        ),
        # unquoted, "#t" was a comment and the limit silently 1 minute
        ("--time", "1 #t", "sbatch: error: Invalid --time specification"),
    ],
)
def test_sbatch_reads_a_partition_or_time_limit_it_cannot_use_whole(
    cluster, tmp_path, flag, value, complaint
):
    made = run_cli("slurm", "script", "--array", "2", flag, value, "--logs", str(tmp_path))
    assert made.code == 0, made.stderr
    script = tmp_path / "job.sh"
    script.write_bytes(made.stdout)
    tried = subprocess.run(
        ["sbatch", "--test-only", str(script)],
        cwd=tmp_path,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert tried.returncode != 0
    assert complaint in tried.stderr.splitlines(), tried.stderr
    assert not list(tmp_path.rglob("hostile-*"))
