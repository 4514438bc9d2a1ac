"""The library API: docs/api.md's examples run as written, from any thread, cancellable."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from conftest import alive, descendants, write_config

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
