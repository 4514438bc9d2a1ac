"""The dest lock: two real runs into one pdb_dir never run rsync into the same dest."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import orjson
import pytest
from conftest import LiveRun, assert_valid_events, processes_mentioning, write_config

from pdbsync.locks import LOCK_SUFFIX, DestLock, lock_path

pytestmark = pytest.mark.timeout(120)


def _config(throttled_mirror, tmp_path, name="c.toml"):
    return write_config(
        tmp_path / name,
        tmp_path / "pdb",
        {
            "mmcif": {
                "url": throttled_mirror.url("ftp_data", "structures/divided/mmCIF/"),
                "dest": "m",
            }
        },
    )


def _run(config, *extra):
    return LiveRun("--config", str(config), "sync", "mmcif", "--format", "json", *extra)


def _rsync_groups_into(dest) -> set[int]:
    """The process groups of the rsyncs writing under ``dest`` (rsync leads its own
    group; the receiver it forks is in it): one group per rsync run."""
    groups = set()
    for pid, line in processes_mentioning(str(dest)).items():
        if "rsync" in line.split()[0]:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            groups.add(int(stat.rsplit(")", 1)[1].split()[2]))
    return groups


def test_the_lock_file_sits_beside_the_dest_and_names_its_holder(tmp_path):
    dest = tmp_path / "pdb" / "structures" / "mmCIF"
    path = lock_path(dest)
    assert path == tmp_path / "pdb" / "structures" / f"mmCIF{LOCK_SUFFIX}"
    path.parent.mkdir(parents=True)
    first, second = DestLock.open(path), DestLock.open(path)
    assert first.try_take()
    first.write_holder({"SLURM_JOB_ID": "77"})
    assert not second.try_take()
    assert second.holder().startswith(f"pid {os.getpid()} on {socket.gethostname()} (Slurm job 77)")
    first.release()
    assert second.try_take()
    second.release()


def test_a_symlink_in_place_of_the_lock_file_is_refused(tmp_path):
    (tmp_path / "elsewhere").write_text("x")
    (tmp_path / f"d{LOCK_SUFFIX}").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        DestLock.open(lock_path(tmp_path / "d"))


def test_a_second_run_gives_up_on_a_locked_target_after_lock_timeout(throttled_mirror, tmp_path):
    config = _config(throttled_mirror, tmp_path)
    first = _run(config)
    holder = first.wait_for(lambda e: e["type"] == "progress")["name"]
    assert holder == "mmcif"
    worker_pid = next(e["pid"] for e in first.events if e["type"] == "sync_started")
    second = _run(config, "--lock-timeout", "0.5")
    code, events, stderr = second.finish(timeout=30)
    assert code == 1, stderr
    assert_valid_events(events)
    [waited] = [e for e in events if e["type"] == "lock_wait"]
    assert waited["holder"].startswith(f"pid {worker_pid} on ")
    result = events[-1]["summary"]["results"][0]
    assert result["status"] == "skipped"
    assert f"locked by pid {worker_pid} on" in result["error"]
    assert "--lock-timeout" in result["error"]
    assert not any(e["type"] == "output" for e in events)  # its rsync never started
    code, events, stderr = first.finish(timeout=30)
    assert code == 0, stderr


def test_a_second_run_waits_for_the_lock_and_never_runs_rsync_beside_the_first(
    throttled_mirror, tmp_path
):
    for round_number in range(2):
        work = tmp_path / f"round{round_number}"
        work.mkdir()
        config = _config(throttled_mirror, work)
        first = _run(config)
        first.wait_for(lambda e: e["type"] == "progress")
        second = _run(config)
        second.wait_for(lambda e: e["type"] == "lock_wait")
        most = 0
        while first.proc.poll() is None:  # while the first runs, one rsync tree at most
            most = max(most, len(_rsync_groups_into(work / "pdb")))
            time.sleep(0.02)
        code, _, stderr = first.finish(timeout=30)
        assert code == 0, stderr
        assert most == 1
        code, events, stderr = second.finish(timeout=30)
        assert code == 0, stderr
        result = events[-1]["summary"]["results"][0]
        assert result["status"] == "success"


def test_a_run_killed_outright_frees_its_lock(throttled_mirror, tmp_path):
    config = _config(throttled_mirror, tmp_path)
    first = LiveRun("--config", str(config), "sync", "mmcif", "--format", "json", new_session=True)
    first.wait_for(lambda e: e["type"] == "progress")
    os.killpg(first.proc.pid, signal.SIGKILL)  # the OOM killer, Slurm after KillWait
    first.proc.wait(timeout=10)
    second = _run(config, "--lock-timeout", "10")
    code, events, stderr = second.finish(timeout=60)
    assert code == 0, stderr
    assert events[-1]["summary"]["results"][0]["status"] == "success"
    holder = json.loads(lock_path(tmp_path / "pdb" / "m").read_text())
    assert holder["pid"] != first.proc.pid and orjson.dumps(holder)
