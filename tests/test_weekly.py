"""Weekly updates against the real loopback daemon: after any sequence of weekly
releases, a weekly target's tree is the same, byte for byte, as a full sync of the same
mirror, in every layout pdb-sync knows (pdbsync.weekly.layouts); every fallback says why.

Each test has its own weekly archive (scripts/mini_pdb.py generate_weekly/advance_week)
and daemon: the weeks change the tree.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import orjson
import pytest
from conftest import LiveRun, assert_valid_events, run_cli, write_config

from pdbsync.store import updates

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from local_mirror import LocalMirror
from mini_pdb import WEEK_LAYOUTS, advance_week, generate_weekly


class World:
    """A weekly archive on a daemon, and a config with, per layout, a weekly target and
    a full-sync twin (both with delete on) of the same source."""

    def __init__(self, tmp_path: Path, entries: int = 30, weekly_options: str = "") -> None:
        self.root = tmp_path / "data"
        self.ids = generate_weekly(self.root, entries)
        self.mirror = LocalMirror(self.root, tmp_path / "daemon").start()
        self.pdb = tmp_path / "pdb"
        self.state = tmp_path / "state"
        targets = {}
        for name, path in WEEK_LAYOUTS.items():
            url = self.mirror.url(path=path + "/")
            targets[f"w-{name}"] = {"url": url, "dest": f"weekly/{name}", "update_mode": "weekly"}
            targets[f"f-{name}"] = {"url": url, "dest": f"full/{name}"}
        extra = "\n[sync.defaults]\ndelete = true\n" + weekly_options
        self.config = write_config(tmp_path / "config.toml", self.pdb, targets, extra)
        self.environ = {"PDB_SYNC_STATE_DIR": str(self.state)}

    def weekly_names(self) -> list[str]:
        return [f"w-{name}" for name in WEEK_LAYOUTS]

    def json_sync(self, *args: str):
        """``pdb-sync --config CONFIG sync --format json ARGS`` with this world's state."""
        return run_cli(
            "--config", str(self.config), "sync", "--format", "json", *args, environ=self.environ
        )

    def sync(self, *names: str, extra: tuple[str, ...] = ()) -> dict:
        summary = self.pdb.parent / "summary.json"
        result = self.json_sync(*names, "--summary", str(summary), "--parallel", "2", *extra)
        assert result.code == 0, result.stderr
        assert_valid_events(result.events)  # the new fields too (schemas/event.schema.json)
        self.events = result.events
        data = orjson.loads(summary.read_bytes())
        return {entry["name"]: entry for entry in data["results"]}

    def sync_all(self) -> dict:
        return self.sync()

    def stop(self) -> None:
        self.mirror.stop()


def tree(path: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file (bytes, mtime) and directory (None) under ``path``."""
    found: dict[str, tuple[bytes, int] | None] = {}
    for folder, dirs, files in os.walk(path):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), path)] = None
        for name in files:
            full = os.path.join(folder, name)
            found[os.path.relpath(full, path)] = (
                Path(full).read_bytes(),
                int(os.stat(full).st_mtime),
            )
    return found


def assert_same_as_full(world: World) -> None:
    for name in WEEK_LAYOUTS:
        weekly = tree(world.pdb / "weekly" / name)
        assert weekly, name
        assert weekly == tree(world.pdb / "full" / name), name
        assert weekly == tree(world.root / WEEK_LAYOUTS[name]), name


@pytest.fixture
def world(tmp_path: Path):
    made = World(tmp_path)
    yield made
    made.stop()


def test_weekly_sequence_matches_a_full_sync_in_every_layout(world: World) -> None:
    first = world.sync_all()
    for name in world.weekly_names():
        assert first[name]["mode"] == "full"
        assert "no previous full sync" in first[name]["fallback_reason"]
        assert first[name]["weeks"] == ["20261104"]
    assert "mode" not in first["f-mmcif"]  # a full target's result is as before
    assert_same_as_full(world)

    # week 2: plain; week 3: an entry modified twice across the span (weeks 3 and 4),
    # an id added and made obsolete in one span, lists with blank lines and capitals
    advance_week(world.root, seed=11)
    results = world.sync_all()
    for name in world.weekly_names():
        entry = results[name]
        started = next(e for e in world.events if e["type"] == "sync_started" and e["name"] == name)
        assert started["message"].startswith("Starting weekly update: week 20261111")
        assert (started["mode"], started["weeks"]) == ("weekly", ["20261111"])
        assert (entry["mode"], entry["weeks"]) == ("weekly", ["20261111"]), entry
        assert (entry["added"], entry["modified"], entry["obsolete"]) == (3, 3, 2)
        assert "fallback_reason" not in entry
    assert_same_as_full(world)

    twice = world.ids[5]
    week3 = advance_week(world.root, seed=12, modify=(twice,), noise=True)
    week4 = advance_week(world.root, seed=13, modify=(twice,), make_obsolete=(week3["added"][0],))
    results = world.sync(
        *world.weekly_names()
    )  # the weekly targets only: a skipped run for them...
    for name in world.weekly_names():
        assert results[name]["weeks"] == ["20261118", "20261125"], results[name]
        assert results[name]["mode"] == "weekly"
    world.sync(*[f"f-{name}" for name in WEEK_LAYOUTS])  # ...and the twins catch up
    assert week4["obsolete"][0] == week3["added"][0]
    assert_same_as_full(world)
    assert not list((world.pdb / "weekly" / "mmcif").rglob(f"{week3['added'][0]}*"))

    # nothing new: a weekly run with nothing to transfer
    results = world.sync(*world.weekly_names())
    assert results["w-mmcif"]["mode"] == "weekly" and results["w-mmcif"]["weeks"] == []
    assert results["w-mmcif"]["files_transferred"] == 0
    state = updates.read_updates(world.state)
    assert {entry["last_week"] for entry in state.values()} == {"20261125"}
    assert all(entry["last_full"] and entry["last_weekly"] for entry in state.values())

    # status shows the last full and the last weekly update
    shown = run_cli(
        "--config", str(world.config), "status", "--format", "json", environ=world.environ
    )
    rows = {row["name"]: row for row in orjson.loads(shown.stdout)["targets"]}
    assert rows["w-pdb"]["updates"]["last_week"] == "20261125"
    assert rows["w-pdb"]["updates"]["last_full"] == first["w-pdb"]["started_at"]
    assert rows["w-pdb"]["updates"]["last_weekly"] == results["w-pdb"]["started_at"]
    assert "updates" not in rows["f-pdb"]
    text = run_cli("--config", str(world.config), "status", environ=world.environ).text
    assert "w-pdb: weekly updates: last full " in text
    assert "applied through week 20261125" in text


def test_a_missing_dated_folder_falls_back_to_a_full_sync(world: World) -> None:
    world.sync(*world.weekly_names())
    advance_week(world.root, seed=21, write_folder=False)
    advance_week(world.root, seed=22)
    results = world.sync_all()
    entry = results["w-assemblies"]
    assert entry["mode"] == "full"
    assert entry["fallback_reason"] == "week 20261111 is missing from the mirror's status/ folders"
    assert entry["weeks"] == ["20261104", "20261118"]
    assert_same_as_full(world)
    # the full sync counted the weeks it saw: the next week is weekly again
    advance_week(world.root, seed=23)
    results = world.sync_all()
    assert results["w-assemblies"]["mode"] == "weekly"
    assert results["w-assemblies"]["weeks"] == ["20261125"]
    assert_same_as_full(world)


def test_a_bad_id_or_an_extended_id_falls_back(world: World) -> None:
    world.sync(*world.weekly_names())
    advance_week(world.root, seed=31)
    listed = world.root / "status" / "20261111" / "modified.pdb"
    listed.write_text(listed.read_text() + "\nnot-an-id\n")
    results = world.sync("w-mmcif")
    assert results["w-mmcif"]["mode"] == "full"
    assert "20261111/modified.pdb line" in results["w-mmcif"]["fallback_reason"]
    assert "'not-an-id' is not a PDB id" in results["w-mmcif"]["fallback_reason"]
    advance_week(world.root, seed=32)
    (world.root / "status" / "20261118" / "added.pdb").write_text("pdb_00009xyz\n")
    results = world.sync("w-mmcif")
    assert results["w-mmcif"]["mode"] == "full"
    assert "extended id 'pdb_00009xyz'" in results["w-mmcif"]["fallback_reason"]


def test_full_flag_full_every_and_unreadable_lists(tmp_path: Path) -> None:
    world = World(tmp_path)
    try:
        world.sync("w-mmcif")
        advance_week(world.root, seed=41)
        results = world.sync("w-mmcif", extra=("--full",))
        assert (results["w-mmcif"]["mode"], results["w-mmcif"]["fallback_reason"]) == (
            "full",
            "--full was given",
        )
        # an old last full sync: full_every
        key = next(iter(updates.read_updates(world.state)))
        updates.record_updates(world.state, {key: {"last_full": "2026-01-01T00:00:00.000Z"}})
        results = world.sync("w-mmcif")
        assert "older than full_every" in results["w-mmcif"]["fallback_reason"]
        # a week's list missing: the lists cannot be read
        week = advance_week(world.root, seed=42)["week"][0]
        (world.root / "status" / week / "obsolete.pdb").unlink()
        results = world.sync("w-mmcif")
        assert results["w-mmcif"]["mode"] == "full"
        reason = results["w-mmcif"]["fallback_reason"]
        assert f"status list {week}/obsolete.pdb cannot be read from rsync://" in reason
        # no status folder at all: the weeks cannot be listed (and none is recorded)
        advance_week(world.root, seed=43)
        (world.root / "status").rename(world.root / "status-gone")
        try:
            results = world.sync("w-mmcif")
        finally:
            (world.root / "status-gone").rename(world.root / "status")
        assert results["w-mmcif"]["mode"] == "full"
        assert "cannot list the status folders" in results["w-mmcif"]["fallback_reason"]
        assert results["w-mmcif"]["weeks"] == []
    finally:
        world.stop()


def test_state_is_keyed_by_destination_and_source(world: World, tmp_path: Path) -> None:
    world.sync("w-mmcif")
    other = tmp_path / "other-root"
    result = world.json_sync("w-mmcif", "--dest", str(other))
    assert result.code == 0, result.stderr
    finished = next(e for e in result.events if e["type"] == "sync_finished")["result"]
    assert finished["mode"] == "full"  # another tree: no record of a full sync of it
    assert "no previous full sync" in finished["fallback_reason"]
    assert len(updates.read_updates(world.state)) == 2


def test_plan_shows_the_mode_and_counts_without_transferring(world: World) -> None:
    world.sync("w-assemblies")
    advance_week(world.root, seed=51)
    before = tree(world.pdb / "weekly" / "assemblies")
    result = world.json_sync("w-assemblies", "--plan")
    assert result.code == 0, result.stderr
    assert_valid_events(result.events)
    plan = next(e for e in result.events if e["type"] == "plan")
    finished = next(e for e in result.events if e["type"] == "plan_finished")["plan"]
    assert finished["targets"][0]["mode"] == "weekly"
    assert finished["targets"][0]["weeks"] == ["20261111"]
    assert (plan["mode"], plan["weeks"], plan["added"], plan["obsolete"]) == (
        "weekly",
        ["20261111"],
        3,
        2,
    )
    assert plan["to_create"] > 0 and plan["to_delete"] > 0
    assert tree(world.pdb / "weekly" / "assemblies") == before
    assert (
        updates.read_updates(world.state)[next(iter(updates.read_updates(world.state)))][
            "last_week"
        ]
        == "20261104"
    )


def test_an_interrupted_weekly_run_leaves_the_state_unchanged(tmp_path: Path) -> None:
    world = World(tmp_path)
    try:
        world.sync("w-mmcif")
        before = updates.read_updates(world.state)
        advance_week(world.root, added=40, modified=0, obsolete=0, seed=61)
        world.mirror.add_module("slow", world.root, delay=30.0)
        world.mirror.stop()
        world.mirror.start()
        slow = world.mirror.url("slow", WEEK_LAYOUTS["mmcif"] + "/")
        config = tmp_path / "slow.toml"
        write_config(
            config,
            world.pdb,
            {
                "w-mmcif": {
                    "url": slow,
                    "dest": "weekly/mmcif",
                    "update_mode": "weekly",
                    "status_url": world.mirror.url(path="status/"),
                }
            },
        )
        key = updates.update_key(str((world.pdb / "weekly" / "mmcif").resolve()), slow)
        updates.record_updates(world.state, {key: dict(next(iter(before.values())), source=slow)})
        snapshot = updates.read_updates(world.state)
        proc = LiveRun(
            "--config",
            str(config),
            "sync",
            "--format",
            "json",
            env={**os.environ, **world.environ},
        )
        proc.wait_for(lambda e: e.get("type") == "sync_started")
        proc.proc.send_signal(signal.SIGINT)
        code, events, _err = proc.finish()
        assert code != 0
        assert updates.read_updates(world.state) == snapshot
        finished = next(e for e in events if e["type"] == "sync_finished")["result"]
        assert finished["status"] == "cancelled" and finished["mode"] == "weekly"
    finally:
        world.stop()


def connections(world: World) -> int:
    """Connections the daemon has accepted so far (its log says each one)."""
    return (world.mirror.workdir / "rsyncd.log").read_text().count("] connect from ")


def _week_of_twelve(world: World) -> int:
    """Both targets of every layout synced, then a week of 12 ids; the ids' count."""
    world.sync(*world.weekly_names())
    world.sync(*[f"f-{name}" for name in WEEK_LAYOUTS])
    lists = advance_week(world.root, added=5, modified=4, obsolete=3, seed=71)
    return len(lists["added"]) + len(lists["modified"]) + len(lists["obsolete"])


def test_a_week_costs_two_connections_and_stays_equal(world: World, monkeypatch) -> None:
    """A week of 12 ids costs the decision 1 connection (the dated status folders synced
    into the state's cache: which weeks, and what they list) and the transfer 1: the ids'
    paths packed into one source argument, which the daemon splits at each module name."""
    from pdbsync.weekly import transfer

    _week_of_twelve(world)
    monkeypatch.setattr(transfer, "MAX_SOURCES", 3)  # unpacked, 12 ids would take 4
    before = connections(world)
    results = world.sync("w-assemblies")
    assert (results["w-assemblies"]["mode"], results["w-assemblies"]["status"]) == (
        "weekly",
        "success",
    )
    assert connections(world) - before == 2
    world.sync("f-assemblies")
    assert tree(world.pdb / "weekly" / "assemblies") == tree(world.pdb / "full" / "assemblies")


def test_packed_arguments_past_one_connection_stay_equal(world: World, monkeypatch) -> None:
    """Arguments shrunk to a path or two each and 2 arguments a connection: the week
    takes several connections (never one a file) and the tree is still a full sync's."""
    from pdbsync.weekly import transfer

    ids = _week_of_twelve(world)
    longest = max(len(world.mirror.url(path=p)) for p in WEEK_LAYOUTS.values()) + 40
    monkeypatch.setattr(transfer, "PACKED_ARG_BYTES", 2 * longest)
    monkeypatch.setattr(transfer, "MAX_SOURCES", 2)
    before = connections(world)
    world.sync("w-mmcif")
    used = connections(world) - before - 1
    assert 2 <= used < -(-ids // 2)  # one path an argument would take ceil(ids / 2)
    world.sync("f-mmcif")
    assert tree(world.pdb / "weekly" / "mmcif") == tree(world.pdb / "full" / "mmcif")


def test_one_argument_a_file_when_packing_is_off(world: World, monkeypatch) -> None:
    """An rsync that cannot pack (older than 3.2.4, or protecting its arguments) sends a
    file an argument, 3 a connection here (the argument limit, shrunk): ceil(ids / 3)
    transfers, and the same tree."""
    from pdbsync.weekly import transfer

    ids = _week_of_twelve(world)
    monkeypatch.setattr(transfer, "MAX_SOURCES", 3)
    monkeypatch.setattr(transfer, "may_pack", lambda _flags, _version: False)
    before = connections(world)
    world.sync("w-assemblies")
    assert connections(world) - before == 1 + -(-ids // 3)
    world.sync("f-assemblies")
    assert tree(world.pdb / "weekly" / "assemblies") == tree(world.pdb / "full" / "assemblies")


def test_a_daemon_that_does_not_split_packed_arguments_deletes_nothing_wrongly(
    world: World, monkeypatch
) -> None:
    """A server that reads a packed argument as one path (not rsync's daemon: emulated by
    joining the paths with tabs, where rsync's daemon does not split) lists nothing: the
    week is asked again a path an argument (one more connection) before any absence
    deletes a file, and the tree ends as a full sync's. Without that second request the
    modified entries' files would be deleted as "no longer on the mirror"."""
    from pdbsync.weekly import transfer

    _week_of_twelve(world)
    real = transfer.packed_sources

    def unsplittable(url: str, paths):
        packed = real(url, paths)
        return None if packed is None else [arg.replace(" ", "\t") for arg in packed]

    monkeypatch.setattr(transfer, "packed_sources", unsplittable)
    before = connections(world)
    results = world.sync("w-mmcif")
    assert (results["w-mmcif"]["mode"], results["w-mmcif"]["status"]) == ("weekly", "success")
    assert connections(world) - before == 3  # the decision, the packed request, the retry
    world.sync("f-mmcif")
    assert tree(world.pdb / "weekly" / "mmcif") == tree(world.pdb / "full" / "mmcif")


def test_the_daemon_reads_a_packed_argument_twice_the_budget(world: World, tmp_path: Path) -> None:
    """The margin under the daemon's line (transfer.PACKED_ARG_BYTES): an argument of
    twice that many bytes, its last path a file no earlier piece names, still brings
    that file (a daemon that cut the line would drop it, silently)."""
    import subprocess

    from pdbsync.weekly import transfer

    url = world.mirror.url(path=WEEK_LAYOUTS["mmcif"] + "/")
    files = sorted((world.root / WEEK_LAYOUTS["mmcif"]).rglob("*.cif.gz"))
    first, last = (f.relative_to(world.root / WEEK_LAYOUTS["mmcif"]).as_posix() for f in files[:2])
    inside = url.split("/", 3)[3].rstrip("/")
    arg = f"{url.rstrip('/')}/./{first}"
    while len(arg) < 2 * transfer.PACKED_ARG_BYTES:
        arg += f" {inside}/./{first}"
    arg += f" {inside}/./{last}"
    dest = tmp_path / "margin"
    done = subprocess.run(
        ["rsync", "-aR", "--old-args", "--", arg, f"{dest}/"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert len(arg) > 2 * transfer.PACKED_ARG_BYTES
    assert (dest / first).is_file() and (dest / last).is_file()


def test_every_entry_point_runs_the_same_weekly_update(world: World) -> None:
    """The weekly decision is made in one place (pdbsync.api, for every caller): the
    library's ``pdbsync.sync`` and ``pdbsync.plan``, and the CLI with ``--split`` (a weekly
    job is never split: its batches are the split) and with ``--shard``, each apply the
    week and leave the tree equal to a full sync of the same mirror."""
    import pdbsync

    def assert_equal() -> None:
        world.sync("f-mmcif")
        weekly = tree(world.pdb / "weekly" / "mmcif")
        assert weekly == tree(world.pdb / "full" / "mmcif")
        assert weekly == tree(world.root / WEEK_LAYOUTS["mmcif"])

    first = pdbsync.sync(world.config, ["w-mmcif"], environ=world.environ)
    (result,) = first.results
    assert (result.status, result.mode) == ("success", "full")
    assert "no previous full sync" in result.fallback_reason
    assert_equal()

    advance_week(world.root, added=3, modified=2, obsolete=2, seed=81)
    before = tree(world.pdb / "weekly" / "mmcif")
    planned = pdbsync.plan(world.config, ["w-mmcif"], environ=world.environ).to_dict()
    (target,) = planned["targets"]
    assert (target["mode"], target["added"], target["obsolete"]) == ("weekly", 3, 2)
    assert tree(world.pdb / "weekly" / "mmcif") == before  # a plan changes nothing
    done = pdbsync.sync(world.config, ["w-mmcif"], environ=world.environ)
    (result,) = done.results
    assert (result.status, result.mode, result.added) == ("success", "weekly", 3)
    assert result.obsolete == 2
    assert_equal()

    for seed, extra in ((82, ("--split", "2")), (83, ("--shard", "1/1"))):
        lists = advance_week(world.root, added=2, modified=2, obsolete=1, seed=seed)
        entry = world.sync("w-mmcif", extra=extra)["w-mmcif"]
        assert (entry["status"], entry["mode"], len(entry["weeks"])) == ("success", "weekly", 1)
        assert (entry["added"], entry["obsolete"]) == (len(lists["added"]), len(lists["obsolete"]))
        assert entry.get("parts") is None, extra  # not split into parts
        assert_equal()
