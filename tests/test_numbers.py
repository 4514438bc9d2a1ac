"""Numbers you can trust, against the real daemon: a motd that reads like statistics
changes no result, a permanent failure is not retried, and a cancelled target says what
it had done.

The expected numbers are counted from the archive on disk, never taken from rsync.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import LiveRun, assert_valid_events, run_cli, write_config
from local_mirror import LocalMirror

from pdbsync import contracts
from pdbsync.paths import LOCK_SUFFIX

#: A message of the day that reads like an rsync --stats block, as a mirror's notice
#: might (or a hostile one would): none of it may reach a result.
FAKE_STATS_MOTD = """Welcome to the test mirror.
Number of files: 5
Number of regular files transferred: 777
Total file size: 999,999,999 bytes
Total transferred file size: 999,999,999 bytes
Total bytes received: 999,999,999

sent 999,999,999 bytes  received 999,999,999 bytes  999,999,999.00 bytes/sec
total size is 999,999,999  speedup is 1.00
"""
FAKE = 999_999_999


def _files(root: Path) -> list[Path]:
    """The files rsync put under ``root`` (not the dest locks pdb-sync keeps beside dests)."""
    return [
        path for path in root.rglob("*") if path.is_file() and not path.name.endswith(LOCK_SUFFIX)
    ]


@pytest.fixture(scope="module")
def motd_mirror(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalMirror:
    """A daemon with FAKE_STATS_MOTD: ``ftp_data``, ``refusing`` (pre-xfer exec always
    fails) and ``counted`` (serves, counting its transfers)."""
    local = LocalMirror(archive, tmp_path_factory.mktemp("motd-mirror"), motd=FAKE_STATS_MOTD)
    local.add_module("refusing", archive, fail_first=1_000_000)
    local.add_module("counted", archive, fail_first=0)
    local.start()
    yield local
    local.stop()


def _sync_one(config: Path, summary: Path, *args: str) -> tuple[dict, list[dict]]:
    """Run the config's only target in json mode; (its summary entry, the events)."""
    result = run_cli(
        "--config",
        str(config),
        "sync",
        "--all",
        "--format",
        "json",
        "--summary",
        str(summary),
        *args,
    )
    assert_valid_events(result.events)
    data = json.loads(summary.read_text())
    assert not contracts.problems(data, "summary")
    (entry,) = data["results"]
    return entry, result.events


def test_the_motd_really_reaches_rsyncs_stdout(motd_mirror, tmp_path):
    """The premise of the tests below: the fake block is printed where the parser looks."""
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"t": {"url": motd_mirror.url("refusing", "sifts/"), "dest": "t"}},
    )
    _entry, events = _sync_one(config, tmp_path / "s.json")
    stdout = [e["line"] for e in events if e["type"] == "output" and e["stream"] == "stdout"]
    assert "Total transferred file size: 999,999,999 bytes" in stdout


def test_a_failed_target_does_not_report_the_motds_numbers(motd_mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"t": {"url": motd_mirror.url("refusing", "sifts/"), "dest": "t"}},
    )
    entry, _events = _sync_one(config, tmp_path / "s.json")
    assert entry["status"] == "failed" and entry["exit_code"] == 10
    assert entry["stats"] == {}
    # rsync ran and transferred nothing before the daemon refused
    assert (entry["files_transferred"], entry["bytes_transferred"]) == (0, 0)
    assert not _files(tmp_path / "pdb")


@pytest.mark.parametrize("preset", [None, "fast"])  # fast is quiet: stdout read, not shown
def test_a_successful_target_reports_the_real_numbers_despite_the_motd(
    motd_mirror, archive, tmp_path, preset
):
    target = {"url": motd_mirror.url("ftp_data", "sifts/"), "dest": "sifts"}
    if preset:
        target["preset"] = preset
    config = write_config(tmp_path / "c.toml", tmp_path / "pdb", {"sifts": target})
    entry, _events = _sync_one(config, tmp_path / "s.json")
    assert entry["status"] == "success", entry
    source = _files(archive / "sifts")
    dirs = [p for p in (archive / "sifts").rglob("*") if p.is_dir()]
    assert entry["files_transferred"] == len(source)
    assert entry["bytes_transferred"] == sum(p.stat().st_size for p in source)
    stats = entry["stats"]
    assert stats["files_total_by_type"] == {"reg": len(source), "dir": len(dirs) + 1}
    assert stats["total_size"] == stats["transferred_size"] == entry["bytes_transferred"]
    assert FAKE not in stats.values()


def test_a_missing_path_is_not_retried_and_its_zero_stats_are_rsyncs(motd_mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"gone": {"url": motd_mirror.url("counted", "no/such/dir/"), "dest": "gone"}},
    )
    entry, events = _sync_one(config, tmp_path / "s.json", "--retry", "3", "--retry-delay", "0")
    assert entry["status"] == "failed" and entry["exit_code"] == 23
    assert "No such file or directory" in entry["error"]
    assert entry["attempts"] == 1
    assert not [e for e in events if e["type"] == "retry"]
    assert motd_mirror.connections("counted") == 1, "rsync was started more than once"
    # exit 23 comes after rsync's own (empty) stats block, which replaces the motd's
    assert entry["stats"]["files_total"] == 0
    assert (entry["files_transferred"], entry["bytes_transferred"]) == (0, 0)


def test_a_missing_path_on_the_shared_mirror_runs_exactly_one_attempt(mirror, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"gone": {"url": mirror.url("ftp_data", "x/"), "dest": "gone"}},
    )
    result = run_cli("--config", str(config), "sync", "gone", "--retry", "3", "--retry-delay", "0")
    assert result.code == 1
    assert "Retry" not in result.text
    assert 'change_dir "x" (in ftp_data) failed: No such file or directory' in result.text


def test_a_cancelled_target_reports_what_it_had_transferred(throttled_mirror, archive, tmp_path):
    """SIGTERM in the middle of a slow transfer: the result has the last redraw's counts."""
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"slow": {"url": throttled_mirror.url("ftp_data", ""), "dest": "slow"}},
    )
    summary = tmp_path / "s.json"
    run = LiveRun(
        "--config", str(config), "sync", "--all", "--format", "json", "--summary", str(summary)
    )
    seen = run.wait_for(
        lambda e: e["type"] == "progress" and (e["files_transferred"] or 0) >= 1 and e["bytes"] > 0
    )
    run.proc.send_signal(signal.SIGTERM)
    code, events, stderr = run.finish(timeout=30)
    assert code == 143, stderr
    assert_valid_events(events)
    (entry,) = json.loads(summary.read_text())["results"]
    source = _files(archive)
    assert entry["status"] == "cancelled", entry
    assert entry["stats"] == {}, "a stopped rsync prints no stats block"
    assert seen["files_transferred"] <= entry["files_transferred"] < len(source)
    assert seen["bytes"] <= entry["bytes_transferred"] < sum(p.stat().st_size for p in source)
    on_disk = _files(tmp_path / "pdb/slow")
    assert entry["files_transferred"] <= len(on_disk), "more files counted than arrived"


def _wait_for(condition, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_busy_daemon_is_retried_on_its_own_message(archive, tmp_path):
    """The one exit 5 worth retrying, with the message a real rsync 3.x daemon sends."""
    local = LocalMirror(archive, tmp_path / "busy-mirror")
    local.add_module(
        "busy",
        archive,
        fail_first=0,  # counts the transfers that got past the connection limit
        delay=60,
        **{"max connections": "1", "lock file": str(tmp_path / "busy.lock")},
    )
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"b": {"url": local.url("busy", "emdb/"), "dest": "b"}},
    )
    with local:
        holder = subprocess.Popen(
            ["rsync", "-a", local.url("busy", "emdb/"), str(tmp_path / "holder")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(lambda: local.connections("busy") == 1)  # it holds the only slot
            entry, events = _sync_one(
                config, tmp_path / "s.json", "--retry", "2", "--retry-delay", "0"
            )
        finally:
            holder.kill()
            holder.wait()
        assert local.connections("busy") == 1, "a refused attempt got past the limit"
    assert [(e["attempt"], e["exit_code"]) for e in events if e["type"] == "retry"] == [
        (2, 5),
        (3, 5),
    ]
    assert entry["status"] == "failed" and entry["attempts"] == 3
    assert "max connections (1) reached -- try again later" in entry["error"]
    assert (entry["files_transferred"], entry["bytes_transferred"]) == (0, 0)
