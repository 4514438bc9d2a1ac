"""The library API: docs/api.md's examples run as written, from any thread, cancellable."""

from __future__ import annotations

import dataclasses
import enum
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


# -- the session object: Mirror, RunOptions, the result's status, ok, raise_for_failures --


@pytest.fixture
def good_and_broken(mirror, tmp_path, monkeypatch) -> Path:
    """``good`` syncs from the test daemon; ``broken`` names a module it does not have,
    so its rsync really fails (exit 5)."""
    monkeypatch.chdir(tmp_path)
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "good": {"url": mirror.url("ftp_data", "sifts/"), "dest": "good"},
            "broken": {"url": mirror.url("no_such_module", "x/"), "dest": "broken"},
        },
    )


def test_a_mirror_syncs_against_the_daemon_and_its_result_reads_by_name(config_here, tmp_path):
    events: list[dict] = []
    mirror = pdbsync.Mirror(config_here)
    assert mirror.targets == ["mmcif", "sifts"]
    result = mirror.sync(["sifts"], parallel=2, on_event=events.append)
    assert result["sifts"].status is pdbsync.Status.SUCCESS
    assert result["sifts"].status == "success"  # old comparisons keep working
    assert result["sifts"].files_transferred > 0
    assert (tmp_path / "pdb" / "sifts").is_dir()
    assert result.ok and result.raise_for_failures() is result
    assert "sifts" in result and "mmcif" not in result
    with pytest.raises(KeyError, match="mmcif"):
        result["mmcif"]
    assert result.parallel == 2
    assert [e["type"] for e in (events[0], events[-1])] == ["run_started", "run_finished"]
    # JSON carries the value, as before: the run_finished event and to_dict() agree
    assert events[-1]["summary"]["results"][0]["status"] == "success"
    assert json.loads(json.dumps(result.to_dict()))["results"][0]["status"] == "success"


def test_a_real_failed_target_is_not_ok_and_raise_for_failures_names_it(good_and_broken):
    for result in (
        pdbsync.Mirror(good_and_broken).sync(),
        pdbsync.sync(good_and_broken),  # the old function returns the same result type
    ):
        assert result["good"].status is pdbsync.Status.SUCCESS
        assert result["broken"].status is pdbsync.Status.FAILED
        assert not result.ok and result.exit_code == 1
        with pytest.raises(pdbsync.TargetsFailed) as raised:
            result.raise_for_failures()
        assert isinstance(raised.value, pdbsync.PdbSyncError)
        assert raised.value.targets == ["broken"]
        assert raised.value.exit_code == 1
        assert raised.value.message.startswith("1 target did not succeed: broken (failed: ")
        assert "good" not in raised.value.message
    planned = pdbsync.Mirror(good_and_broken).plan(["good", "broken"])
    assert planned["broken"].status is pdbsync.Status.FAILED and not planned.ok
    with pytest.raises(pdbsync.TargetsFailed, match="broken"):
        planned.raise_for_failures()


def test_a_cancelled_run_is_not_ok(config_here):
    stop = threading.Event()
    stop.set()
    result = pdbsync.Mirror(config_here).sync(["sifts"], cancel=stop)
    assert result["sifts"].status is pdbsync.Status.CANCELLED and not result.ok
    with pytest.raises(pdbsync.TargetsFailed) as raised:
        result.raise_for_failures()
    assert raised.value.exit_code == 130 and raised.value.targets == ["sifts"]


def test_run_options_are_one_frozen_checked_value(config_here, tmp_path):
    options = pdbsync.RunOptions(parallel=2, overrides={"delete": True})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.parallel = 3  # type: ignore[misc]
    mirror = pdbsync.Mirror(config_here, options)
    assert mirror.options_with(parallel=4) == dataclasses.replace(options, parallel=4)
    assert mirror.options == options  # a run's changes never change the mirror's
    with pytest.raises(pdbsync.UsageError, match="fail_fast must be"):
        pdbsync.RunOptions(fail_fast="soon")
    with pytest.raises(pdbsync.UsageError, match="unknown run option 'paralel'"):
        mirror.sync(["sifts"], paralel=2)
    jobs = mirror.prepare(["sifts"])
    assert [job.name for job in jobs] == ["sifts"] and "--delete" in jobs[0].argv
    assert not (tmp_path / "pdb").exists()  # nothing ran


@pytest.mark.parametrize("parallel", [101, 10**6])
def test_the_parallel_cap_is_one_limit_for_the_library_and_the_cli(config_here, tmp_path, parallel):
    """The library took any parallel (a million workers); now the CLI's limit applies."""
    for run in (
        lambda: pdbsync.sync(config_here, ["sifts"], parallel=parallel),
        lambda: pdbsync.plan(config_here, ["sifts"], parallel=parallel),
        lambda: pdbsync.Mirror(config_here).sync(["sifts"], parallel=parallel),
        lambda: pdbsync.RunOptions(parallel=parallel),
    ):
        with pytest.raises(pdbsync.UsageError) as refused:
            run()
        assert refused.value.message == (
            f"parallel must be a whole number from 1 to {pdbsync.MAX_PARALLEL}, got {parallel}"
        )
        assert refused.value.exit_code == 2
    cli = run_cli("--config", str(config_here), "sync", "sifts", "--parallel", str(parallel))
    assert cli.code == 2 and "--parallel" in cli.stderr
    assert f"between 1 and {pdbsync.MAX_PARALLEL}" in cli.stderr
    assert not (tmp_path / "pdb").exists()  # nothing ran
    at_cap = pdbsync.sync(config_here, ["sifts"], parallel=pdbsync.MAX_PARALLEL)
    assert at_cap.ok and at_cap.parallel == pdbsync.MAX_PARALLEL


def test_the_command_line_refuses_a_bad_summary_path_through_the_library(config_here, tmp_path):
    """``--summary DIR`` is refused by the library's check (exit 2, one line), the same
    check a Python caller's ``summary=DIR`` meets, before anything runs."""
    cli = run_cli("--config", str(config_here), "sync", "sifts", "--summary", str(tmp_path))
    assert cli.code == 2
    (line,) = cli.stderr.strip().splitlines()
    with pytest.raises(pdbsync.UsageError) as refused:
        pdbsync.sync(config_here, ["sifts"], summary=tmp_path)
    assert line == f"pdb-sync: error: {refused.value.message}".replace("summary", "--summary", 1)
    assert not (tmp_path / "pdb").exists()


# -- docs/api.md documents the public API, and only what exists ---------------------------

#: Classes whose members docs/api.md lists as ``Class.member``.
DOCUMENTED_CLASSES = (
    "Mirror",
    "RunOptions",
    "Status",
    "Summary",
    "PlanSummary",
    "SyncResult",
    "TargetsFailed",
    "EventSink",
    "CancelFlag",
)


def _members(cls: type) -> set[str]:
    """The public members a user can reach: attributes, methods, properties, dataclass
    fields, annotated instance attributes, enum members (not what Exception or str
    bring along)."""
    if issubclass(cls, enum.Enum):
        return set(cls.__members__)
    inherited = set(dir(Exception)) if issubclass(cls, Exception) else set()
    names = {name for name in dir(cls) if name not in inherited}
    for klass in cls.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
    if dataclasses.is_dataclass(cls):
        names |= {field.name for field in dataclasses.fields(cls)}
    return {name for name in names if not name.startswith("_")}


def _docs_text() -> str:
    return DOCS.read_text()


def test_every_public_name_and_member_is_documented():
    text = _docs_text()
    missing = [f"pdbsync.{name}" for name in pdbsync.__all__ if f"`pdbsync.{name}" not in text]
    for class_name in DOCUMENTED_CLASSES:
        cls = getattr(pdbsync, class_name)
        missing += [
            f"{class_name}.{member}"
            for member in sorted(_members(cls))
            if not re.search(rf"`{class_name}\.{member}[`(]", text)
        ]
    assert not missing, f"docs/api.md does not document: {', '.join(missing)}"


def test_every_documented_name_exists():
    text = _docs_text()
    unknown = []
    for name, member in re.findall(r"`pdbsync\.(\w+)(?:\.(\w+))?", text):
        if name not in (*pdbsync.__all__, "__all__"):
            unknown.append(f"pdbsync.{name}")
        elif member and member not in _members(getattr(pdbsync, name)):
            unknown.append(f"pdbsync.{name}.{member}")
    for class_name, member in re.findall(r"`(\w+)\.(\w+)[`(]", text):
        if class_name in DOCUMENTED_CLASSES and member not in _members(
            getattr(pdbsync, class_name)
        ):
            unknown.append(f"{class_name}.{member}")
    assert not unknown, f"docs/api.md documents what does not exist: {', '.join(unknown)}"
