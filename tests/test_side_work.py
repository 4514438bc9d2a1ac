"""The run's side work (the jsonschema import) waits until the first rsyncs are running.

Started right after the pool forked, it held the GIL while the pool's task thread was
still handing jobs to the workers, and the first rsyncs started ~20 ms later.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import write_config

import pdbsync
from pdbsync.messages import RsyncStarted
from pdbsync.run import collector as runner
from pdbsync.run.collector import Collector, _Running

pytestmark = pytest.mark.timeout(60)


def _collector(calls: list[int], jobs: list) -> Collector:
    collector = Collector(
        jobs=jobs, parallel=2, emit=lambda event: None, on_transfers_started=lambda: calls.append(1)
    )
    collector.pool_started = time.monotonic()
    return collector


def _running(key: str, seen: bool) -> _Running:
    state = _Running(job=None)  # type: ignore[arg-type]  # the job is not looked at here
    state.rsync_seen = seen
    return state


def test_side_work_waits_for_every_running_job_to_start_rsync_then_runs_once():
    calls: list[int] = []
    collector = _collector(calls, [])
    collector.running = {"a": _running("a", True), "b": _running("b", False)}
    collector._start_side_work()
    assert calls == []
    collector.running["b"].rsync_seen = True
    collector._start_side_work()
    collector._start_side_work()
    assert calls == [1]


def test_side_work_runs_when_nothing_is_running():
    calls: list[int] = []
    collector = _collector(calls, [])
    collector._start_side_work()
    assert calls == [1]


def test_a_job_that_never_starts_rsync_holds_the_side_work_back_only_so_long():
    calls: list[int] = []
    collector = _collector(calls, [])
    collector.running = {"a": _running("a", False)}
    collector.pool_started = time.monotonic() - runner.TRANSFERS_START_SECONDS
    collector._start_side_work()
    assert calls == [1]


def test_a_job_between_retries_still_counts_as_started():
    """rsync's end (``RsyncStarted(None)``, a retry's wait) does not undo its start."""
    calls: list[int] = []
    collector = _collector(calls, [])
    collector.running = {"a": _running("a", False)}
    collector._handle(RsyncStarted("a", 4242))
    collector._handle(RsyncStarted("a", None))
    assert collector.running["a"].rsync_seen and collector.running["a"].rsync_pid is None
    collector._start_side_work()
    assert calls == [1]


def test_side_work_that_fails_is_logged_and_the_run_goes_on():
    collector = Collector(jobs=[], parallel=1, emit=lambda event: None)
    collector.pool_started = time.monotonic()

    def side_work() -> None:
        raise RuntimeError("can't start new thread")

    collector.on_transfers_started = side_work
    collector._start_side_work()  # no exception
    assert collector.on_transfers_started is None


def test_in_a_real_run_the_side_work_starts_while_every_first_rsync_runs(
    mirror, tmp_path: Path, monkeypatch
):
    # Only the rsyncs' start may trigger it here, not the time limit.
    monkeypatch.setattr(runner, "TRANSFERS_START_SECONDS", 60.0)
    config = write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            # the "slow" module runs a pre-xfer command: each rsync is alive for a while
            "mmcif": {"url": mirror.url("slow", "structures/divided/mmCIF/"), "dest": "mmcif"},
            "sifts": {"url": mirror.url("slow", "sifts/"), "dest": "sifts"},
        },
    )
    jobs = pdbsync.prepare(config)
    seen: list[dict[str, str]] = []
    collector = Collector(jobs=jobs, parallel=2, emit=lambda event: None)

    def side_work() -> None:
        commands = {}
        for key, state in collector.running.items():
            assert state.rsync_pid is not None, f"{key}: no rsync yet"
            commands[key] = Path(f"/proc/{state.rsync_pid}/comm").read_text().strip()
        seen.append(commands)

    collector.on_transfers_started = side_work
    results = collector.run()
    assert seen == [{"mmcif": "rsync", "sifts": "rsync"}]
    assert [result.status for result in results] == ["success", "success"]
