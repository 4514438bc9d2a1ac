"""Options really change what rsync does: real transfers from a real local daemon."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from conftest import assert_valid_events, run_cli, write_config
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


def test_partial_is_on_by_default_and_no_partial_passes_no_partial_flag(own_mirror, tmp_path):
    root, mirror = own_mirror
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"d": {"url": mirror.url("ftp_data", ""), "dest": "d"}},
    )
    shown = run_cli("--config", str(config), "config", "show", "d")
    assert "partial         = true          (built-in)" in shown.text
    assert "partial_dir     = .rsync-partial  (built-in)" in shown.text
    default = _sync(config, "d", "--format", "json")
    assert [a for a in _started_argv(default) if a.startswith("--partial")] == [
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
