"""Plan mode: rsync --dry-run --itemize-changes through the real pool, then the real sync.

The agreement test is the point: a plan that says "create N, delete M" must be what
the real sync then does, counted three ways (its itemized lines, its --stats, the disk).
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import assert_valid_events, run_cli, write_config
from local_mirror import LocalMirror

from pdbsync import contracts
from pdbsync.report.render import JsonRenderer, TextRenderer
from pdbsync.report.summary import SyncResult
from pdbsync.rsync.argv import RsyncArgv
from pdbsync.rsync.output import ItemizedCounts
from pdbsync.run.driver import RunSettings, run_plan, run_sync
from pdbsync.run.jobs import Job, RetryPolicy
from pdbsync.run.plan_mode import PlanSummary


def _job(name: str, url: str, dest: Path, flags: tuple[str, ...], plan: bool = False) -> Job:
    """A job with explicit rsync flags (the config has no flags key until issue 3)."""
    command = RsyncArgv(shutil.which("rsync") or "rsync", url, str(dest), flags, plan=plan)
    return Job(name=name, url=url, dest=dest, command=command, plan=plan)


def _events(out: io.BytesIO) -> list[dict]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def _entries(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_plan_changes_nothing_and_reports_every_target(four_targets, archive, tmp_path):
    summary_path = tmp_path / "plan.json"
    result = run_cli(
        "--config",
        str(four_targets),
        "sync",
        "--all",
        "--plan",
        "--parallel",
        "4",
        "--format",
        "json",
        "--summary",
        str(summary_path),
    )
    assert result.code == 0, result.stderr
    assert not (tmp_path / "pdb").exists(), "a plan created the mirror root"
    events = result.events
    assert_valid_events(events)
    assert events[-1]["type"] == "plan_finished"
    plans = {e["name"]: e for e in events if e["type"] == "plan"}
    assert set(plans) == {"mmcif", "pdb", "sifts", "emdb"}
    source = archive / "sifts"
    sifts = plans["sifts"]
    assert sifts["files_total"] == len(_entries(source)) + 1  # rsync counts the root too
    assert sifts["to_create"] == sifts["files_total"]  # nothing there yet
    assert sifts["total_size"] == sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    assert sifts["bytes_to_transfer"] == sifts["total_size"]
    assert sifts["to_update"] == 0 and sifts["to_delete"] is None
    assert not any(e["type"] == "output" and "Number of" in e["line"] for e in events)
    written = json.loads(summary_path.read_text())
    assert not contracts.problems(written, "plan")
    assert written == events[-1]["plan"]
    assert written["totals"]["to_create"] == sum(p["to_create"] for p in plans.values())
    assert written["totals"]["planned"] == 4


def test_plan_predicts_what_the_real_sync_then_does(mirror, archive, tmp_path):
    url = mirror.url("ftp_data", "structures/divided/")
    dest = tmp_path / "mirror"
    shutil.copytree(archive / "structures/divided", dest)
    removed = sorted(dest.rglob("*.cif.gz"))[:7]
    for path in removed:
        path.unlink()
    changed = sorted(dest.rglob("*.ent.gz"))[:3]
    for path in changed:
        path.write_bytes(path.read_bytes() + b"local edit\n")
    (dest / "obsolete" / "2abc").mkdir(parents=True)
    for number in range(4):
        (dest / "obsolete" / "2abc" / f"{number}.cif.gz").write_bytes(b"old")
    before = _entries(dest)

    out = io.BytesIO()
    plan_job = _job("divided", url, dest, ("-a", "--delete"), plan=True)
    plan = run_plan([plan_job], RunSettings(), JsonRenderer(out))
    assert int(plan.exit_code) == 0
    assert _entries(dest) == before, "the plan changed the tree"
    events = _events(out)
    assert_valid_events(events)
    predicted = next(e for e in events if e["type"] == "plan")
    assert (predicted["to_create"], predicted["to_update"], predicted["to_delete"]) == (7, 3, 6)
    assert "obsolete/" in predicted["deletion_sample"]

    out = io.BytesIO()
    real_job = _job("divided", url, dest, ("-a", "--delete", "--itemize-changes"))
    summary = run_sync([real_job], RunSettings(), JsonRenderer(out))
    assert int(summary.exit_code) == 0
    done = ItemizedCounts()
    for event in _events(out):
        if event["type"] == "output" and event["stream"] == "stdout":
            done.feed(event["line"])
    assert (done.created, done.updated, done.deleted) == (7, 3, 6)
    stats = summary.results[0].stats
    assert stats["files_created"] == predicted["to_create"]
    assert stats["files_deleted"] == predicted["to_delete"]
    assert stats["files_transferred"] == predicted["to_create"] + predicted["to_update"]
    assert stats["transferred_size"] == predicted["bytes_to_transfer"]
    after = _entries(dest)
    assert len(before - after) == predicted["to_delete"]
    assert len(after - before) == predicted["to_create"]


def test_text_plan_flags_deletions_loudly_and_tabulates_totals(mirror, archive, tmp_path):
    dest = tmp_path / "sifts"
    shutil.copytree(archive / "sifts", dest)
    for number in range(3):
        (dest / f"stale{number}.xml.gz").write_bytes(b"old")
    url = mirror.url("ftp_data", "sifts/")
    jobs = [
        _job("sifts", url, dest, ("-a", "--delete"), plan=True),
        _job("emdb", mirror.url("ftp_data", "emdb/"), tmp_path / "emdb", ("-a",), plan=True),
    ]
    out = io.BytesIO()
    renderer = TextRenderer(out, isatty=False)
    renderer.plan_summary(run_plan(jobs, RunSettings(parallel=2), renderer).to_dict())
    renderer.flush()
    text = out.getvalue().decode()
    assert "[sifts] WILL DELETE 3 files\n" in text
    assert "[sifts]   delete:    3\n" in text
    assert "[emdb]   delete:    off" in text
    assert "\x1b" not in text
    table = text.partition("=== Plan Summary (dry run: nothing was changed) ===\n")[2]
    header, sifts, emdb, total = table.splitlines()[:4]
    assert header.split() == ["target", "files", "size", "create", "update", "delete", "transfer"]
    assert sifts.split()[0] == "sifts" and sifts.split()[-3] == "3"
    assert emdb.split()[-3] == "off"
    assert total.split()[0] == "TOTAL" and total.split()[-3] == "3"
    assert "WILL DELETE 3 files (sifts)" in table
    assert "Completed in" not in text  # the plan block replaces it

    colored = io.BytesIO()
    renderer = TextRenderer(colored, isatty=True, color=True)
    renderer.plan_summary(run_plan(jobs[:1], RunSettings(), renderer).to_dict())
    renderer.flush()
    assert "\x1b[1;31mWILL DELETE 3 files\x1b[0m" in colored.getvalue().decode()


def test_failed_plan_target_is_reported_and_the_others_still_planned(mirror, tmp_path):
    config = write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "good": {"url": mirror.url("ftp_data", "emdb/"), "dest": "good"},
            "broken": {"url": mirror.url("no_such_module", "x/"), "dest": "broken"},
        },
    )
    summary_path = tmp_path / "plan.json"
    result = run_cli(
        "--config", str(config), "sync", "--all", "--plan", "--summary", str(summary_path)
    )
    assert result.code == 1
    plan = json.loads(summary_path.read_text())
    assert not contracts.problems(plan, "plan")
    by_name = {t["name"]: t for t in plan["targets"]}
    assert by_name["broken"]["status"] == "failed"
    assert by_name["broken"]["files_total"] is None
    assert by_name["good"]["to_create"] > 0
    assert plan["totals"]["planned"] == 1 and plan["totals"]["failed"] == 1
    assert "[broken] FAILED (exit 5)" in result.text
    assert "broken  FAILED" in result.text


def test_plans_share_the_pool_and_its_retries(archive, tmp_path):
    """--parallel overlaps plans like syncs; a transient failure is retried, counted once."""
    local = LocalMirror(archive, tmp_path / "daemon")
    local.add_module("flaky", archive, fail_first=1)
    local.add_module("slow", archive, delay=0.6)
    with local:
        flaky = _job("flaky", local.url("flaky", "emdb/"), tmp_path / "flaky", ("-a",), plan=True)
        flaky = Job(**{**flaky.__dict__, "retry": RetryPolicy(retries=2, delay=0)})
        slow = [
            _job(f"s{i}", local.url("slow", "sifts/"), tmp_path / f"s{i}", ("-a",), plan=True)
            for i in range(3)
        ]
        out = io.BytesIO()
        plan = run_plan([flaky, *slow], RunSettings(parallel=3), JsonRenderer(out))
        assert local.connections("flaky") == 2
    assert int(plan.exit_code) == 0
    events = _events(out)
    assert [e["attempt"] for e in events if e["type"] == "retry"] == [2]
    assert [e["name"] for e in events if e["type"] == "plan"].count("flaky") == 1
    starts = {e["name"]: e["ts"] for e in events if e["type"] == "sync_started"}
    ends = {e["name"]: e["ts"] for e in events if e["type"] == "sync_finished"}
    assert starts["s1"] < ends["s0"] and starts["s0"] < ends["s1"], "plans never overlapped"


def test_sigint_cancels_a_plan_and_still_writes_a_valid_plan(archive, tmp_path):
    local = LocalMirror(archive, tmp_path / "daemon")
    local.add_module("stuck", archive, delay=30)  # never finishes within the test
    with local:
        config = write_config(
            tmp_path / "config.toml",
            tmp_path / "pdb",
            {
                "stuck": {"url": local.url("stuck", "sifts/"), "dest": "a"},
                "quick": {"url": local.url("ftp_data", "emdb/"), "dest": "b"},
            },
        )
        summary_path = tmp_path / "plan.json"
        argv = ["--config", str(config), "sync", "--all", "--plan", "--parallel", "2"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "pdbsync", *argv, "--summary", str(summary_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[quick] Plan ("):
                proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, "".join(seen)
    plan = json.loads(summary_path.read_text())
    assert not contracts.problems(plan, "plan")
    assert plan["interrupted"] == "SIGINT" and plan["exit_code"] == 130
    by_name = {t["name"]: t for t in plan["targets"]}
    assert by_name["stuck"]["status"] == "cancelled" and by_name["stuck"]["to_create"] is None
    assert by_name["quick"]["status"] == "success" and by_name["quick"]["to_create"] > 0
    assert "Interrupted by SIGINT." in "".join(seen)


def test_plan_exit_code_needs_every_plan_and_yields_to_signals():
    """Same rules as a sync's (one function), plus: a success without its plan fails."""
    now = "2026-11-27T10:00:00.000Z"
    results = [
        SyncResult("a", "h::m/a/", "/d/a", "success"),
        SyncResult("b", "h::m/b/", "/d/b", "success"),
    ]

    def summary(plans, interrupted=None):
        return PlanSummary(results, plans, 1, now, now, 1.0, interrupted)

    both = {"a": {}, "b": {}}
    assert summary(both).exit_code == 0
    assert summary({"a": {}}).exit_code == 1
    assert summary(both, "SIGINT").exit_code == 130
    assert summary(both, "SIGTERM").exit_code == 143


def test_a_sharded_plan_covers_only_the_jobs_that_shard_would_run(four_targets, tmp_path):
    plan = run_cli(
        "--config", str(four_targets), "sync", "--plan", "--shard", "2/3", "--format", "json"
    )
    assert plan.code == 0, plan.stderr
    data = plan.events[-1]["plan"]
    assert not contracts.problems(data, "plan")
    assert (data["shard"]["index"], data["shard"]["count"]) == (2, 3)
    summary = tmp_path / "s2.json"
    ran = run_cli(
        "--config", str(four_targets), "sync", "--shard", "2/3", "--summary", str(summary)
    )
    assert ran.code == 0, ran.stderr
    shard_targets = [r["name"] for r in json.loads(summary.read_text())["results"]]
    assert 0 < len(shard_targets) < 4
    assert [t["name"] for t in data["targets"]] == shard_targets
    from pdbsync import api

    planned = api.plan(four_targets, shard="2/3", environ={})  # the library, alike
    assert [r.name for r in planned.results] == shard_targets


def test_a_plan_says_which_targets_the_deadline_would_cut(four_targets, tmp_path):
    from pdbsync.store import history as state

    first = tmp_path / "first.json"
    assert run_cli("--config", str(four_targets), "sync", "emdb", "--summary", str(first)).code == 0
    history = json.loads(first.read_text())
    history["results"][0]["duration_s"] = 7200.0  # as if its last sync took two hours
    state.record_run(history, "sync")
    plan = run_cli(
        "--config", str(four_targets), "sync", "--plan", "--deadline", "+1h", "--format", "json"
    )
    assert plan.code == 1, plan.stderr  # the sync would not get everything done
    targets = {t["name"]: t for t in plan.events[-1]["plan"]["targets"]}
    assert targets["emdb"]["status"] == "skipped"
    assert "expected to take 2h 0m (its last sync)" in targets["emdb"]["error"]
    assert "--deadline +1h" in targets["emdb"]["error"]
    assert {name for name, t in targets.items() if t["status"] == "success"} == {
        "mmcif",
        "pdb",
        "sifts",
    }
    text = run_cli("--config", str(four_targets), "sync", "--plan", "--deadline", "+1h")
    assert "[emdb] SKIPPED: not started: expected to take 2h 0m" in text.text


@pytest.mark.parametrize(
    "args",
    [
        ("--shard", "0/3"),
        ("--shard", "9/3"),
        ("--shard", "٢/٣"),
        ("--deadline", "soon"),
        ("--deadline", "-1h"),
        ("--deadline", "99999999999999999999"),
    ],
)
def test_a_plan_refuses_a_bad_shard_or_deadline_as_a_sync_does(four_targets, args):
    plan = run_cli("--config", str(four_targets), "sync", "--plan", *args)
    sync = run_cli("--config", str(four_targets), "sync", *args)
    assert (plan.code, sync.code) == (2, 2)
    assert plan.stderr == sync.stderr and plan.stderr.count("\n") == 1
    assert plan.stdout == b""
