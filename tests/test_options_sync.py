"""Options really change what rsync does: real transfers from a real local daemon."""

from __future__ import annotations

import os
import shlex
import signal
import time
from pathlib import Path

import pytest
import tomlkit
from conftest import LiveRun, assert_valid_events, run_cli, write_config
from local_mirror import LocalMirror


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def own_mirror(tmp_path: Path):
    """A small source tree of our own (one big file) served by its own daemon."""
    root = tmp_path / "source"
    (root / "data").mkdir(parents=True)
    (root / "data" / "small.txt").write_text("small\n")
    (root / "data" / "big.bin").write_bytes(b"\0" * (300 * 1024))
    (root / "data" / "entry.cif").write_text("version 1\n")
    mirror = LocalMirror(root, tmp_path / "daemon").start()
    yield root, mirror
    mirror.stop()


def _sync(config: Path, *args: str):
    result = run_cli("--config", str(config), "sync", *args)
    assert result.code == 0, (result.stderr, result.text)
    return result


def test_delete_removes_a_stale_file_and_is_off_by_default(mirror, archive, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"}},
    )
    stale = tmp_path / "pdb" / "sifts" / "xml" / "withdrawn.xml.gz"
    stale.parent.mkdir(parents=True)
    stale.write_text("gone upstream")
    _sync(config, "sifts")
    assert stale.exists()  # without delete, rsync leaves it
    _sync(config, "sifts", "--delete")
    assert not stale.exists()
    assert _files(tmp_path / "pdb" / "sifts") == _files(archive / "sifts")


def test_exclude_in_the_config_keeps_files_out(mirror, archive, tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"pdb": {"url": mirror.url("ftp_data", "structures/divided/"), "dest": "divided"}},
        extra='[sync.custom.pdb.options]\nexclude = ["pdb/"]\n',
    )
    _sync(config, "pdb")
    got = _files(tmp_path / "pdb" / "divided")
    assert got == {f"mmCIF/{n}" for n in _files(archive / "structures/divided/mmCIF")}
    assert not (tmp_path / "pdb" / "divided" / "pdb").exists()


def test_include_before_exclude_selects_one_kind_of_file(own_mirror, tmp_path):
    _root, mirror = own_mirror
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"d": {"url": mirror.url("ftp_data", ""), "dest": "d"}},
    )
    _sync(config, "d", "--include", "*/", "--include", "*.cif", "--exclude", "*")
    assert _files(tmp_path / "pdb" / "d") == {"data/entry.cif"}


def test_max_size_skips_the_big_file(own_mirror, tmp_path):
    _root, mirror = own_mirror
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"d": {"url": mirror.url("ftp_data", ""), "dest": "d"}},
        extra='[sync.defaults]\nmax_size = "100K"\n',
    )
    _sync(config, "d")
    assert _files(tmp_path / "pdb" / "d") == {"data/small.txt", "data/entry.cif"}
    _sync(config, "d", "--max-size", "1M")  # the command line wins over [sync.defaults]
    assert "data/big.bin" in _files(tmp_path / "pdb" / "d")


def test_backup_keeps_the_old_copy(own_mirror, tmp_path):
    root, mirror = own_mirror
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"d": {"url": mirror.url("ftp_data", ""), "dest": "d", "preset": "conservative"}},
        extra="[sync.custom.d.options]\nverbose = false\n",
    )
    _sync(config, "d")
    (root / "data" / "entry.cif").write_text("version 2, longer\n")
    _sync(config, "d")
    dest = tmp_path / "pdb" / "d" / "data"
    assert (dest / "entry.cif").read_text() == "version 2, longer\n"
    assert (dest / "entry.cif~").read_text() == "version 1\n"


def test_backup_dir_collects_the_old_copies(own_mirror, tmp_path):
    root, mirror = own_mirror
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"d": {"url": mirror.url("ftp_data", ""), "dest": "d"}},
    )
    _sync(config, "d")
    (root / "data" / "entry.cif").write_text("version 2, longer\n")
    backups = tmp_path / "pdb" / "old"  # an absolute backup dir must be inside pdb_dir
    _sync(config, "d", "--backup", "--backup-dir", str(backups))
    assert (backups / "data" / "entry.cif").read_text() == "version 1\n"


def _started_argv(result) -> list[str]:
    (started,) = [e for e in result.events if e["type"] == "sync_started"]
    return started["argv"]


def test_partial_is_off_by_default_and_partial_passes_the_partial_dir(own_mirror, tmp_path):
    root, mirror = own_mirror
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"d": {"url": mirror.url("ftp_data", ""), "dest": "d"}},
    )
    shown = run_cli("--config", str(config), "config", "show", "d")
    assert "partial         = false         (built-in)" in shown.text
    assert "partial_dir     = .rsync-partial  (built-in)" in shown.text
    default = _sync(config, "d", "--format", "json")
    assert [a for a in _started_argv(default) if a.startswith("--partial")] == []
    on = _sync(config, "d", "--partial", "--format", "json")
    assert [a for a in _started_argv(on) if a.startswith("--partial")] == [
        "--partial-dir=.rsync-partial"
    ]
    (root / "data" / "entry.cif").write_text("version 2, longer\n")
    off = _sync(config, "d", "--no-partial", "--format", "json")
    assert [a for a in _started_argv(off) if a.startswith("--partial")] == []
    assert (tmp_path / "pdb" / "d" / "data" / "entry.cif").read_text() == "version 2, longer\n"
    config.write_text(config.read_text() + "[sync.custom.d.options]\npartial = false\n")
    from_config = _sync(config, "d", "--format", "json")
    assert [a for a in _started_argv(from_config) if a.startswith("--partial")] == []
    again = _sync(config, "d", "--partial", "--format", "json")
    assert "--partial-dir=.rsync-partial" in _started_argv(again)


def test_dry_run_prints_the_commands_and_changes_nothing(four_targets, tmp_path):
    result = _sync(four_targets, "--all", "--dry-run")
    assert not (tmp_path / "pdb").exists()
    lines = result.text.splitlines()
    assert [line.split("]")[0][1:] for line in lines] == ["mmcif", "pdb", "sifts", "emdb"]
    argv = shlex.split(lines[0].split("] ", 1)[1])
    assert argv[1:3] == ["-a", "-n"] and argv[-1] == f"{tmp_path}/pdb/structures/divided/mmCIF/"


def test_dry_run_verbose_shows_each_option_and_its_layer(four_targets, tmp_path):
    four_targets.write_text(
        four_targets.read_text().replace(
            '[sync.custom."sifts"]', '[sync.defaults]\ntimeout = 30\n\n[sync.custom."sifts"]', 1
        )
        + 'preset = "safe"\n'  # lands on the last target, emdb
    )
    result = _sync(four_targets, "emdb", "--dry-run", "-v", "--no-checksum")
    assert "[emdb]   compress        = true          (preset safe)" in result.text
    assert "[emdb]   checksum        = false         (cli: --no-checksum)" in result.text
    assert "[emdb]   timeout         = 30            (defaults: sync.defaults.timeout)" in (
        result.text
    )
    assert "[emdb]   delete          = false         (built-in)" in result.text
    assert not (tmp_path / "pdb").exists()


def test_dry_run_json_events_are_valid_and_carry_argv_and_options(four_targets, tmp_path):
    result = _sync(four_targets, "mmcif", "sifts", "--dry-run", "--format", "json", "--delete")
    events = result.events
    assert_valid_events(events)
    assert [e["type"] for e in events] == ["dry_run", "dry_run"]
    assert events[0]["argv"][:4] == [events[0]["argv"][0], "-a", "--delete", "-n"]
    assert events[0]["message"] == shlex.join(events[0]["argv"])
    assert events[0]["options"]["delete"] is True and events[0]["sources"]["delete"] == "cli"
    assert not (tmp_path / "pdb").exists()


# -- partial files: a cut-off big file resumes; a default target keeps no partial -------

MAP_SIZE = 6 * 1024 * 1024


@pytest.fixture
def map_mirror(tmp_path: Path):
    """An EMDB-like tree with one big map (random bytes: nothing to compress or match)."""
    root = tmp_path / "source"
    (root / "EMD-1001" / "map").mkdir(parents=True)
    (root / "EMD-1001" / "map" / "emd_1001.map").write_bytes(os.urandom(MAP_SIZE))
    mirror = LocalMirror(root, tmp_path / "daemon").start()
    yield root, mirror
    mirror.stop()


def _emdb_config(tmp_path: Path, url: str, made_by: str) -> Path:
    """The emdb target as a user gets it: from ``config init`` (maps wanted: its exclude
    dropped, as its comment says) or from ``--profile-add emdb``, pointed at ``url``."""
    path = tmp_path / "config.toml"
    if made_by == "config init":
        assert (
            run_cli(
                "--config", str(path), "config", "init", "--pdb-dir", str(tmp_path / "pdb")
            ).code
            == 0
        )
    else:
        path.write_text(f'[paths]\npdb_dir = "{tmp_path / "pdb"}"\n')
        assert run_cli("--config", str(path), "sync", "--profile-add", "emdb").code == 0
    document = tomlkit.parse(path.read_text())
    emdb = document["sync"]["custom"]["emdb"]
    emdb["url"] = url
    if "options" in emdb:
        del emdb["options"]["exclude"]
    path.write_text(tomlkit.dumps(document))
    return path


def _cut_off(config: Path, dest_dir: Path) -> tuple[int, str]:
    """Start syncing ``emdb`` slowly, SIGTERM pdb-sync once rsync has written 1 MiB of the
    map, and return its exit code and stderr."""
    run = LiveRun("--config", str(config), "sync", "emdb", "--bwlimit", "1000", "--format", "json")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # poll the temp file rsync writes beside the map
        written = [p.stat().st_size for p in dest_dir.glob(".emd_1001.map.*") if p.is_file()]
        if written and max(written) >= 1024 * 1024:
            break
        assert run.proc.poll() is None, run.finish()
        time.sleep(0.02)
    else:
        raise AssertionError("rsync wrote no 1 MiB of the map within 60 s")
    run.proc.send_signal(signal.SIGTERM)
    code, _, stderr = run.finish()
    return code, stderr


def _summary(result) -> dict:
    (finished,) = [e for e in result.events if e["type"] == "run_finished"]
    (target,) = finished["summary"]["results"]
    return target


@pytest.mark.parametrize("made_by", ["config init", "profile"])
def test_a_big_file_target_resumes_a_cut_off_map_at_the_next_run(map_mirror, tmp_path, made_by):
    root, mirror = map_mirror
    config = _emdb_config(tmp_path, mirror.url("ftp_data", ""), made_by)
    dest_dir = tmp_path / "pdb" / "emdb" / "EMD-1001" / "map"
    code, stderr = _cut_off(config, dest_dir)
    assert code == 143, stderr
    assert not (dest_dir / "emd_1001.map").exists()  # never a cut-off file in place
    kept = dest_dir / ".rsync-partial" / "emd_1001.map"
    source = (root / "EMD-1001" / "map" / "emd_1001.map").read_bytes()
    assert 1024 * 1024 <= kept.stat().st_size < MAP_SIZE
    assert source.startswith(kept.read_bytes())
    kept_size = kept.stat().st_size

    again = _sync(config, "emdb", "--format", "json")
    stats = _summary(again)["stats"]
    assert (dest_dir / "emd_1001.map").read_bytes() == source
    # rsync used the kept part: only the rest came over the wire
    assert stats["matched_data"] >= kept_size - 64 * 1024
    assert stats["literal_data"] <= MAP_SIZE - kept_size + 64 * 1024
    assert not (dest_dir / ".rsync-partial").exists()


def test_a_default_target_cut_off_keeps_nothing_and_no_file_in_place(map_mirror, tmp_path):
    root, mirror = map_mirror
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"emdb": {"url": mirror.url("ftp_data", ""), "dest": "emdb"}},
    )
    dest_dir = tmp_path / "pdb" / "emdb" / "EMD-1001" / "map"
    code, stderr = _cut_off(config, dest_dir)
    assert code == 143, stderr
    # rsync's own default: the cut-off temp file is deleted, none kept, none in place
    assert sorted(p.name for p in dest_dir.iterdir()) == []
    again = _sync(config, "emdb", "--format", "json")
    assert _summary(again)["stats"]["literal_data"] == MAP_SIZE  # from scratch
    assert (dest_dir / "emd_1001.map").read_bytes() == (
        root / "EMD-1001/map/emd_1001.map"
    ).read_bytes()
