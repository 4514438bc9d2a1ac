"""The library API: docs/api.md's examples run as written, from any thread, cancellable."""

from __future__ import annotations

import json
import re
import threading
import tomllib
from pathlib import Path

import pytest
from conftest import alive, assert_valid_events, descendants, run_cli, write_config

import pdbsync

DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"


@pytest.fixture
def config_here(mirror, tmp_path, monkeypatch) -> Path:
    """A config.toml in the working directory, as the docs' examples expect."""
    monkeypatch.chdir(tmp_path)
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "mmcif": {
                "url": mirror.url("stall", "structures/divided/mmCIF/"),
                "dest": "mmcif",
            },
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"},
        },
    )


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_the_docs_have_examples():
    assert len(_examples()) >= 5


@pytest.mark.parametrize("number", range(len(_examples())))
def test_docs_example_runs(config_here, number, mirror, tmp_path, capsys):
    code = _examples()[number]
    if 'sync("config.toml", ["mmcif", "sifts"]' in code:
        # The first example syncs mmcif for real: point it at the fast module.
        text = config_here.read_text().replace("/stall/", "/ftp_data/")
        config_here.write_text(text)
    exec(compile(code, f"docs/api.md example {number + 1}", "exec"), {})
    assert "Traceback" not in capsys.readouterr().err


def test_public_names_are_listed_and_importable():
    assert {"sync", "plan", "prepare", "load_config", "Summary", "SyncResult"} <= set(
        pdbsync.__all__
    )
    for name in pdbsync.__all__:
        assert getattr(pdbsync, name) is not None


def test_sync_from_a_thread_with_events_and_typed_results(config_here, tmp_path):
    """Off the main thread (no signal handlers may be installed there), events arrive in
    order and the returned summary is what was written."""
    events: list[dict] = []
    box: dict = {}

    def run() -> None:
        box["summary"] = pdbsync.sync(
            config_here, ["sifts"], on_event=events.append, summary=tmp_path / "s.json"
        )

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    summary = box["summary"]
    assert summary.exit_code == 0 and summary.results[0].status == "success"
    assert summary.results[0].files_transferred > 0
    assert events[0]["type"] == "run_started"
    assert events[-1]["type"] == "run_finished"
    assert json.loads((tmp_path / "s.json").read_text()) == summary.to_dict()


def test_cancel_stops_a_stalled_target_and_leaves_no_process(config_here):
    stop = threading.Event()
    started: list[int] = []

    def on_event(event: dict) -> None:
        if event["type"] == "sync_started":
            started.append(event["pid"])
            threading.Timer(0.3, stop.set).start()

    summary = pdbsync.sync(config_here, ["mmcif", "sifts"], on_event=on_event, cancel=stop)
    assert summary.interrupted == "cancel" and summary.exit_code == 130
    statuses = {r.name: r.status for r in summary.results}
    assert statuses["mmcif"] == "cancelled"
    assert "cancelled by cancel" in summary.results[0].error
    assert not alive(set(started)), "a worker outlived the run"
    assert not descendants_of_workers(started)


def descendants_of_workers(pids: list[int]) -> set[int]:
    found: set[int] = set()
    for pid in pids:
        found |= alive(descendants(pid))
    return found


def test_bad_input_raises_one_line_errors(config_here):
    with pytest.raises(pdbsync.UsageError, match="unknown target 'nope'"):
        pdbsync.sync(config_here, ["nope"])
    with pytest.raises(pdbsync.UsageError, match="parallel"):
        pdbsync.sync(config_here, ["sifts"], parallel=0)
    with pytest.raises(pdbsync.ConfigError, match="not found"):
        pdbsync.load_config(config_here.parent / "missing.toml")


def test_a_dry_run_target_is_never_run(config_here, tmp_path):
    events: list[dict] = []
    summary = pdbsync.sync(
        config_here, ["sifts"], overrides={"dry_run": True}, on_event=events.append
    )
    assert summary.results == [] and summary.exit_code == 0
    assert [e["type"] for e in events] == ["dry_run"]
    assert not (tmp_path / "pdb" / "sifts").exists()


# -- a library run gets every check and record a command-line run gets ------------------


def _safe_config(config_here: Path) -> Path:
    """``config_here`` with ``[sync] require_safe_rsync = true``."""
    config_here.write_text(config_here.read_text() + "\n[sync]\nrequire_safe_rsync = true\n")
    return config_here


def test_require_safe_rsync_refuses_a_library_run_as_it_refuses_the_cli(
    config_here, tmp_path, old_rsync
):
    config = _safe_config(config_here)
    cli = run_cli("--config", str(config), "sync", "sifts")
    assert cli.code == 2
    (line,) = cli.stderr.strip().splitlines()
    for run in (pdbsync.sync, pdbsync.plan):
        with pytest.raises(pdbsync.EnvironmentProblem) as refused:
            run(config, ["sifts"])
        assert f"pdb-sync: error: {refused.value.message}" == line
        assert refused.value.exit_code == cli.code
    assert not (tmp_path / "pdb").exists()  # nothing ran
    assert pdbsync.sync(config, ["sifts"], allow_vulnerable_rsync=True).exit_code == 0


def test_a_vulnerable_rsync_is_a_warning_event_before_the_library_run(config_here, old_rsync):
    events: list[dict] = []
    summary = pdbsync.sync(config_here, ["sifts"], on_event=events.append)
    assert summary.exit_code == 0
    assert [e["type"] for e in events[:2]] == ["warning", "run_started"]
    assert events[0]["code"] == "vulnerable_rsync" and events[0]["rsync_version"] == "3.2.7"
    assert_valid_events(events)
    cli = run_cli("--config", str(config_here), "sync", "sifts", "--format", "json")
    assert cli.events[0] | {"ts": None} == events[0] | {"ts": None}  # the same warning


def test_a_library_run_is_in_status_history_and_max_age(config_here):
    config = str(config_here)
    stale = run_cli("--config", config, "status", "sifts", "--max-age", "1h")
    assert stale.code == 1
    summary = pdbsync.sync(config_here, ["sifts"])
    assert summary.exit_code == 0 and summary.history_error is None
    fresh = run_cli("--config", config, "status", "sifts", "--max-age", "1h", "--format", "json")
    assert fresh.code == 0, fresh.text
    (row,) = json.loads(fresh.text)["targets"]
    assert row["last_success"]["finished_at"] == summary.results[0].finished_at
    planned = pdbsync.plan(config_here, ["sifts"])
    runs = json.loads(run_cli("history", "--format", "json").text)
    assert [(r["kind"], r["started_at"]) for r in runs] == [
        ("plan", planned.started_at),
        ("sync", summary.started_at),
    ]


def test_an_unwritable_history_is_said_on_the_summary_not_raised(config_here, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    environ = {"PDB_SYNC_STATE_DIR": str(blocker / "state")}
    summary = pdbsync.sync(config_here, ["sifts"], environ=environ)
    assert summary.exit_code == 0
    assert summary.history_error is not None and str(blocker) in summary.history_error


@pytest.fixture
def targets_a_b_ab(mirror, tmp_path, monkeypatch) -> Path:
    """Targets named ``a``, ``b`` and ``ab``: one name must never become two."""
    monkeypatch.chdir(tmp_path)
    source = {"url": mirror.url("ftp_data", "sifts/")}
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {name: {**source, "dest": name} for name in ("a", "b", "ab")},
    )


def test_a_str_of_targets_is_one_target_name(targets_a_b_ab, tmp_path):
    summary = pdbsync.sync(targets_a_b_ab, "ab")
    assert [r.name for r in summary.results] == ["ab"]
    assert sorted(p.name for p in (tmp_path / "pdb").iterdir() if p.is_dir()) == ["ab"]
    assert [job.name for job in pdbsync.prepare(targets_a_b_ab, "ab")] == ["ab"]
    assert [t["name"] for t in pdbsync.plan(targets_a_b_ab, "ab").to_dict()["targets"]] == ["ab"]
    with pytest.raises(pdbsync.UsageError, match="unknown target 'ba'"):
        pdbsync.sync(targets_a_b_ab, "ba")


@pytest.mark.parametrize("call", ["sync", "plan"])
def test_the_config_is_parsed_once_per_call(config_here, monkeypatch, call):
    parsed: list[str] = []
    real_loads = tomllib.loads

    def counting_loads(text: str, **kwargs):
        parsed.append(text)
        return real_loads(text, **kwargs)

    monkeypatch.setattr(tomllib, "loads", counting_loads)
    getattr(pdbsync, call)(str(config_here), ["sifts"])
    assert len(parsed) == 1
