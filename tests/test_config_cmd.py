"""The ``config`` command: init, validate, list, presets, migrate, show."""

from __future__ import annotations

import os
import stat
import tomllib

import orjson
import pytest
from conftest import run_cli

from pdbsync.config.load import load_config, target_options
from pdbsync.config.options import PRESETS
from pdbsync.run.jobs import plan_jobs

URL = "rsync://127.0.0.1:873/ftp_data/sifts/"

LEGACY = """\
# my mirror (hand-written, 2019)
[paths]
pdb_dir = "/data/pdb"  # the big disk

[sync.defaults]
timeout = 300

# structures first
[sync.custom.mmcif]
url = "rsync.wwpdb.org::ftp_data/structures/divided/mmCIF/"
dest = "mmCIF"  # relative to pdb_dir
rsync_delete = true   # stale entries go
rsync_exclude = ["*.tmp"]
rsync_timeout = 100

[sync.custom.pdb]
url = "rsync.wwpdb.org::ftp_data/structures/divided/pdb/"
dest = "pdb"
rsync_delete = true
rsync_compress = true
rsync_partial = true
rsync_quiet = true

[sync.custom.sifts]
url = "rsync.ebi.ac.uk::pub/databases/msd/sifts/"
dest = "sifts"
"""


def _cli(config, *args):
    return run_cli("--config", str(config), "config", *args)


# -- init -------------------------------------------------------------------------------


def test_init_writes_a_valid_commented_config_with_real_wwpdb_targets(tmp_path):
    path = tmp_path / "sub" / "config.toml"
    result = _cli(path, "init", "--pdb-dir", "/srv/pdb")
    assert result.code == 0, result.stderr
    text = path.read_text()
    assert text.startswith("# pdb-sync configuration")
    config = load_config(path)
    assert str(config.pdb_dir) == "/srv/pdb"
    urls = [t.url for t in config.targets.values()]
    assert "rsync://rsync.rcsb.org:33444/ftp_data/structures/divided/mmCIF/" in urls
    assert any(u.startswith("data.pdbj.org::rsync/pub/pdb/") for u in urls)
    assert any(u.startswith("rsync.ebi.ac.uk::pub/databases/") for u in urls)
    assert set(config.targets) == {"mmcif", "assemblies", "sifts", "emdb"}
    assert "rsync://rsync.wwpdb.org/ftp_data/" in text  # every mirror, in a comment
    assert (
        config.targets["mmcif"].mirror == "rcsb" and config.targets["assemblies"].mirror == "pdbj"
    )
    assert _cli(path, "validate").code == 0


def _rsync_flags(path, pdb_dir):
    """Each target's rsync options, as the sync would run them (no network needed)."""
    config = load_config(path)
    jobs = plan_jobs(config, list(config.targets), pdb_dir)
    return {job.name: list(job.argv[1 : job.argv.index("--")]) for job in jobs}


def test_init_starter_runs_plain_rsync_on_small_files_and_resumes_big_ones(tmp_path):
    # issue 25: the starter's partial = true and preset "safe" (checksum) made every
    # nightly re-sync of the archive's 250,000 files cost rsync 1.8x or more
    path = tmp_path / "config.toml"
    assert _cli(path, "init", "--pdb-dir", str(tmp_path / "pdb")).code == 0
    flags = _rsync_flags(path, tmp_path / "pdb")
    for name in ("mmcif", "assemblies", "sifts"):
        assert flags[name] == ["-a", "--timeout=600", "--contimeout=60", "--info=progress2",
                               "--stats"], name  # fmt: skip
    assert "--partial-dir=.rsync-partial" in flags["emdb"]
    assert "-c" not in flags["emdb"] and "--partial" not in flags["emdb"]


def test_init_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("# mine\n")
    result = _cli(path, "init")
    assert result.code == 2 and "already exists; use --force" in result.stderr
    assert path.read_text() == "# mine\n"
    assert _cli(path, "init", "--force", "--minimal").code == 0
    assert list(load_config(path).targets) == ["mmcif"]


def test_init_path_option_wins_over_the_config_location(tmp_path):
    target = tmp_path / "elsewhere.toml"
    assert _cli(tmp_path / "c.toml", "init", "--path", str(target)).code == 0
    assert target.exists() and not (tmp_path / "c.toml").exists()


# -- validate ---------------------------------------------------------------------------


def test_validate_reports_every_problem_at_once(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[sync.defaults]\ntimeout = 0\n[sync.custom.a]\nurl = "{URL}"\ndest = "a"\n'
        'preset = "nope"\n[sync.custom.b]\nurl = "/local"\ndest = "b"\n'
        '[sync.custom.c]\nurl = "' + URL + '"\ndest = "c"\n'
        '[sync.custom.c.options]\npartial_dir = "p"\npartial = false\n'
    )
    result = _cli(path, "validate")
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert any("sync.custom.a.preset: unknown preset 'nope'" in line for line in lines)
    assert any("sync.custom.b.url" in line for line in lines)
    data = orjson.loads(_cli(path, "validate", "--json").stdout)
    assert data["valid"] is False and data["config"] == str(path)
    assert len(data["problems"]) == 2  # schema problems first: the enum and the url
    path.write_text(
        path.read_text().replace('preset = "nope"\n', "").replace('"/local"', f'"{URL}"')
    )
    data = orjson.loads(_cli(path, "validate", "--json").stdout)
    assert data["problems"] == [
        f"{path}: sync.defaults.timeout: must be greater than 0, got 0",
    ]
    path.write_text(path.read_text().replace("timeout = 0", "timeout = 5"))
    result = _cli(path, "validate", "--json")
    assert result.code == 2
    assert orjson.loads(result.stdout)["problems"] == [
        f"{path}: target 'c': sync.custom.c.options.partial_dir: partial_dir needs partial = true"
    ]


def test_validate_lists_every_shared_tree_and_a_dest_at_pdb_dir(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[sync.custom.structures]\nurl = "{URL}"\ndest = "structures"\n'
        f'[sync.custom.mmcif]\nurl = "{URL}"\ndest = "structures/divided/mmCIF"\n'
        f'[sync.custom.pdb]\nurl = "{URL}"\ndest = "structures/divided/pdb"\n'
        f'[sync.custom.root]\nurl = "{URL}"\ndest = "./"\n'
    )
    result = _cli(path, "validate", "--json")
    assert result.code == 2
    problems = orjson.loads(result.stdout)["problems"]
    assert problems[0].startswith(f"{path}: sync.custom.root.dest: './' is pdb_dir itself")
    assert problems[1:] == [
        f"{path}: sync.custom.mmcif.dest: 'structures/divided/mmCIF' is inside "
        "sync.custom.structures.dest 'structures'; targets must not share a tree "
        "(one could delete the other's files)",
        f"{path}: sync.custom.pdb.dest: 'structures/divided/pdb' is inside "
        "sync.custom.structures.dest 'structures'; targets must not share a tree "
        "(one could delete the other's files)",
    ]


def test_validate_ok_and_syntax_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(f'[sync.custom.a]\nurl = "{URL}"\ndest = "a"\n')
    result = _cli(path, "validate")
    assert result.code == 0 and result.text == f"{path}: OK\n"
    path.write_text("[sync.custom.a\n")
    result = _cli(path, "validate", "--json")
    assert result.code == 2 and "TOML syntax error" in orjson.loads(result.stdout)["problems"][0]


# -- list, presets, show ----------------------------------------------------------------


def test_list_shows_url_dest_and_preset(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[sync.custom.a]\nurl = "{URL}"\ndest = "a"\npreset = "fast"\n'
        f'[sync.custom.bb]\nurl = "{URL}"\ndest = "b"\n'
    )
    result = _cli(path, "list")
    assert result.code == 0
    rows = [line.split() for line in result.text.splitlines()]
    assert rows == [
        ["NAME", "PRESET", "MIRROR", "URL", "DEST"],
        ["a", "fast", "-", URL, "a"],
        ["bb", "-", "-", URL, "b"],
    ]
    data = orjson.loads(_cli(path, "list", "--format", "json").stdout)
    assert data[0] == {
        "name": "a",
        "url": URL,
        "dest": "a",
        "preset": "fast",
        "description": "",
        "mirror": None,
        "mirror_reason": "url",
    }


def test_sync_list_shows_the_same_targets_as_config_list(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[sync.custom.a]\nurl = "{URL}"\ndest = "a"\npreset = "fast"\ndescription = "A"\n'
        f'[sync.custom.bb]\nurl = "{URL}"\ndest = "b"\n'
    )
    table = orjson.loads(_cli(path, "list", "--format", "json").stdout)
    listed = run_cli("--config", str(path), "sync", "--list", "--format", "json")
    assert listed.code == 0
    assert orjson.loads(listed.stdout) == [
        {key: row[key] for key in ("name", "description", "url", "dest", "mirror", "mirror_reason")}
        for row in table
    ]
    assert [row["description"] for row in table] == ["A", ""]


def test_presets_lists_what_each_sets(tmp_path):
    result = _cli(tmp_path / "none.toml", "presets")
    assert result.code == 0
    lines = {line.split()[0]: line for line in result.text.splitlines()}
    assert set(lines) == set(PRESETS)
    assert "rsync: --delete -z --partial quiet" in lines["fast"]
    assert "(nothing beyond -a)" in lines["minimal"]
    data = orjson.loads(_cli(tmp_path / "none.toml", "presets", "--format", "json").stdout)
    assert data == PRESETS


def test_show_gives_each_option_with_its_layer(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[sync.defaults]\nbwlimit = 500\n[sync.custom.a]\nurl = "{URL}"\ndest = "a"\n'
        'preset = "safe"\nrsync_delete = true\n[sync.custom.a.options]\nchecksum = false\n'
    )
    result = _cli(path, "show", "a")
    assert result.code == 0
    assert "checksum        = false         (target: sync.custom.a.options.checksum)" in result.text
    assert "compress        = true          (preset safe)" in result.text
    assert "bwlimit         = 500           (defaults: sync.defaults.bwlimit)" in result.text
    assert "delete          = true          (legacy: sync.custom.a.rsync_delete)" in result.text
    data = orjson.loads(_cli(path, "show", "a", "--format", "json").stdout)
    assert data["sources"]["delete"] == "legacy" and data["options"]["bwlimit"] == 500
    assert _cli(path, "show", "zz").code == 2


# -- migrate ----------------------------------------------------------------------------


def _resolved(path):
    config = load_config(path)
    return {name: target_options(config, name).values() for name in config.targets}


def test_migrate_round_trips_a_legacy_config_keeping_comments(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(LEGACY)
    before = _resolved(path)
    result = _cli(path, "migrate")
    assert result.code == 0, result.stderr
    text = path.read_text()
    assert (tmp_path / "config.toml.bak").read_text() == LEGACY
    assert "rsync_" not in text
    for comment in (
        "# my mirror (hand-written, 2019)",
        'pdb_dir = "/data/pdb"  # the big disk',
        "# structures first",
        'dest = "mmCIF"  # relative to pdb_dir',
        "# stale entries go",
    ):
        assert comment in text
    data = tomllib.loads(text)
    assert data["sync"]["custom"]["mmcif"]["options"] == {"delete": True, "exclude": ["*.tmp"]}
    assert data["sync"]["custom"]["pdb"]["preset"] == "fast"
    assert "options" not in data["sync"]["custom"]["sifts"]
    assert _resolved(path) == before  # same rsync behaviour, new spelling
    assert "rsync_timeout (overridden, had no effect)" in result.text
    again = _cli(path, "migrate")
    assert again.code == 0 and "nothing to do" in again.text
    assert not (tmp_path / "config.toml.bak.1").exists()


def test_migrate_dry_run_prints_the_diff_and_writes_nothing(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(LEGACY)
    result = _cli(path, "migrate", "--dry-run")
    assert result.code == 0
    assert "-rsync_delete = true   # stale entries go" in result.text
    assert '+preset = "fast"' in result.text
    assert path.read_text() == LEGACY
    assert not (tmp_path / "config.toml.bak").exists()


def test_migrate_never_overwrites_an_earlier_backup(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(LEGACY)
    (tmp_path / "config.toml.bak").write_text("older backup\n")
    assert _cli(path, "migrate").code == 0
    assert (tmp_path / "config.toml.bak").read_text() == "older backup\n"
    assert (tmp_path / "config.toml.bak.1").read_text() == LEGACY


@pytest.mark.parametrize("action", ["", "bogus"])
def test_config_without_a_valid_action_is_a_usage_error(tmp_path, action):
    result = _cli(tmp_path / "c.toml", *([action] if action else []))
    assert result.code == 2


# -- writing safely: symlinked configs, owners, modes, paths -------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")


def _linked_config(tmp_path, text, uid=None, gid=None, mode=0o600):
    """A config that is a symlink into a 'dotfiles' directory, like a managed home."""
    real = tmp_path / "dotfiles" / "config.toml"
    real.parent.mkdir()
    real.write_text(text)
    if uid is not None:
        os.chown(real, uid, gid)
    real.chmod(mode)
    link = tmp_path / "home" / "config.toml"
    link.parent.mkdir()
    link.symlink_to(real)
    return link, real


@needs_root
def test_migrate_edits_a_symlinked_config_in_place_keeping_owner_and_mode(tmp_path):
    link, real = _linked_config(tmp_path, LEGACY, uid=4242, gid=4343)
    result = _cli(link, "migrate")
    assert result.code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "rsync_" not in real.read_text()
    info = real.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o600)
    backup = real.with_name("config.toml.bak")  # beside the file that was edited
    assert backup.read_text() == LEGACY
    info = backup.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o600)
    assert sorted(os.listdir(link.parent)) == ["config.toml"]  # no lock, no backup there


def test_migrate_backup_is_a_byte_copy(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(LEGACY.replace("\n", "\r\n").encode())
    assert _cli(path, "migrate").code == 0
    assert (tmp_path / "config.toml.bak").read_bytes() == LEGACY.replace("\n", "\r\n").encode()


def test_init_force_writes_through_a_symlink(tmp_path):
    link, real = _linked_config(tmp_path, "# mine\n", mode=0o640)
    assert _cli(link, "init", "--pdb-dir", "/srv/pdb").code == 2
    result = _cli(link, "init", "--force", "--pdb-dir", "/srv/pdb")
    assert result.code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("# pdb-sync configuration")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_init_writes_the_pdb_dir_as_an_absolute_path(tmp_path, monkeypatch):
    here = tmp_path / "work"
    here.mkdir()
    monkeypatch.chdir(here)
    path = tmp_path / "conf" / "config.toml"
    assert _cli(path, "init", "--pdb-dir", "./pdb").code == 0
    assert tomllib.loads(path.read_text())["paths"]["pdb_dir"] == str(here / "pdb")
    assert load_config(path).pdb_dir == here / "pdb"  # not conf/pdb
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _cli(path, "init", "--force", "--pdb-dir", "~/pdb").code == 0
    assert tomllib.loads(path.read_text())["paths"]["pdb_dir"] == str(tmp_path / "home" / "pdb")


def test_init_over_a_directory_is_one_line_exit_2(tmp_path):
    result = _cli(tmp_path, "init", "--force")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"pdb-sync: error: {tmp_path}: cannot write: is a directory"
    ]


def test_init_to_dev_full_is_one_line_and_leaves_the_device(tmp_path):
    result = run_cli("config", "init", "--force", "--path", "/dev/full")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "pdb-sync: error: /dev/full: cannot write: No space left on device"
    ]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
