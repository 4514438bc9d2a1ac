"""Built-in profiles: listing, adding without losing comments, and concurrent adds."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib

import orjson
import pytest
from conftest import run_cli

from pdbsync.config.load import load_config
from pdbsync.config.profiles import PROFILES
from pdbsync.run.jobs import plan_jobs

HAND_WRITTEN = """\
# my config: keep this comment
[paths]
pdb_dir = "/data/pdb"  # big disk

[sync.custom.mine]
url = "rsync://127.0.0.1:873/ftp_data/sifts/"  # local test mirror
dest = "mine"
"""


def test_profile_list_names_every_profile_with_url_and_dest(tmp_path):
    result = run_cli("--config", str(tmp_path / "none.toml"), "sync", "--profile-list")
    assert result.code == 0
    for profile in PROFILES.values():
        assert f"url:    {profile.url}" in result.text
    assert "preset: None" not in result.text and "preset: -" in result.text
    assert "option: delete = true" in result.text  # all-structures
    rows = orjson.loads(
        run_cli(
            "sync", "--profile-list", "--format", "json", environ={"HOME": str(tmp_path)}
        ).stdout
    )
    assert [row["name"] for row in rows] == [
        "structures",
        "assemblies",
        "emdb",
        "sifts",
        "all-structures",
    ]


def test_profile_add_keeps_comments_and_gives_a_valid_target(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN)
    result = run_cli("--config", str(path), "sync", "--profile-add", "structures")
    assert result.code == 0, result.stderr
    text = path.read_text()
    assert text.startswith(HAND_WRITTEN)
    config = load_config(path)
    assert list(config.targets) == ["mine", "structures"]
    assert config.targets["structures"].url == PROFILES["structures"].url
    again = run_cli("--config", str(path), "sync", "--profile-add", "structures")
    assert again.code == 2 and "sync.custom.structures already exists" in again.stderr
    assert path.read_text() == text


def test_only_big_file_profiles_keep_partial_files_and_none_checksums(tmp_path):
    # issue 25: --partial-dir and checksum tax every re-sync of a small-file tree
    path = tmp_path / "config.toml"
    for name in PROFILES:
        if name != "structures":  # all-structures holds its tree
            assert run_cli("--config", str(path), "sync", "--profile-add", name).code == 0
    config = load_config(path)
    jobs = {job.name: job.argv for job in plan_jobs(config, list(config.targets), tmp_path)}
    assert "--partial-dir=.rsync-partial" in jobs.pop("emdb")
    assert "--delete" in jobs["all-structures"]
    for name, argv in jobs.items():
        assert not any(a.startswith("--partial") for a in argv), name
        assert "-c" not in argv and "--checksum" not in argv, name


def test_profile_add_creates_a_missing_config(tmp_path):
    path = tmp_path / "new" / "config.toml"
    assert run_cli("--config", str(path), "sync", "--profile-add", "sifts").code == 0
    assert tomllib.loads(path.read_text())["sync"]["custom"]["sifts"]["dest"] == "sifts"


def test_profile_dry_run_prints_the_change_and_writes_nothing(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN)
    result = run_cli("--config", str(path), "sync", "--profile-add", "emdb", "--profile-dry-run")
    assert result.code == 0
    assert "+[sync.custom.emdb]" in result.text
    assert f'+url = "{PROFILES["emdb"].url}"' in result.text
    assert path.read_text() == HAND_WRITTEN


def test_profile_add_in_json_mode_prints_one_json_object(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN)
    args = ("--config", str(path), "sync", "--profile-add", "sifts", "--format", "json")
    dry = run_cli(*args, "--profile-dry-run")
    assert dry.code == 0
    shown = orjson.loads(dry.stdout)
    assert shown["profile"] == "sifts" and shown["config"] == str(path)
    assert shown["written"] is False and "+[sync.custom.sifts]" in shown["diff"]
    assert path.read_text() == HAND_WRITTEN
    added = run_cli(*args)
    assert added.code == 0 and added.stdout.count(b"\n") == 1
    assert orjson.loads(added.stdout) == {**shown, "written": True}
    assert "sifts" in load_config(path).targets


def test_profile_overlapping_an_existing_target_is_refused_and_nothing_written(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN)
    assert run_cli("--config", str(path), "sync", "--profile-add", "structures").code == 0
    before = path.read_text()
    result = run_cli("--config", str(path), "sync", "--profile-add", "all-structures")
    assert result.code == 2
    assert result.stderr == (
        f"pdb-sync: error: {path}: sync.custom.structures.dest: 'structures/divided/mmCIF' "
        "is inside sync.custom.all-structures.dest 'structures'; targets must not share a "
        "tree (one could delete the other's files)\n"
    )
    assert path.read_text() == before
    dry = run_cli(
        "--config", str(path), "sync", "--profile-add", "all-structures", "--profile-dry-run"
    )
    assert dry.code == 2 and "must not share a tree" in dry.stderr


def test_profile_add_checks_hand_written_dests_too(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN.replace('dest = "mine"', 'dest = "./sifts/"'))
    result = run_cli("--config", str(path), "sync", "--profile-add", "sifts", "--profile-dry-run")
    assert result.code == 2
    assert (
        "sync.custom.sifts.dest: 'sifts' is the same directory as sync.custom.mine.dest "
        "'./sifts/'" in result.stderr
    )


def test_unknown_profile_lists_the_known_ones(tmp_path):
    result = run_cli("--config", str(tmp_path / "c.toml"), "sync", "--profile-add", "mmcif")
    assert result.code == 2
    assert "unknown profile 'mmcif'; known profiles: structures, assemblies" in result.stderr
    assert not (tmp_path / "c.toml").exists()


def test_concurrent_profile_adds_all_land(tmp_path):
    """Real processes racing on one file: the lock serialises the read-modify-write."""
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pdbsync", "--config", str(path), "sync", "--profile-add", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for name in PROFILES
    ]
    failed = {}
    for name, proc in zip(PROFILES, procs, strict=True):
        _out, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            failed[name] = (proc.returncode, err.decode())
    # structures and all-structures share a tree: whichever comes second is refused.
    ((loser, (code, err)),) = failed.items()
    assert loser in ("structures", "all-structures") and code == 2, failed
    assert "targets must not share a tree" in err
    config = load_config(path)
    assert set(config.targets) == {"mine", *PROFILES} - {loser}
    assert path.read_text().startswith(HAND_WRITTEN)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_profile_add_to_a_symlinked_config_edits_its_target_keeping_owner_and_mode(tmp_path):
    real = tmp_path / "dotfiles" / "config.toml"
    real.parent.mkdir()
    real.write_text(HAND_WRITTEN)
    os.chown(real, 4242, 4343)
    real.chmod(0o600)
    link = tmp_path / "home" / "config.toml"
    link.parent.mkdir()
    link.symlink_to(real)
    result = run_cli("--config", str(link), "sync", "--profile-add", "sifts")
    assert result.code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith(HAND_WRITTEN) and "sifts" in load_config(real).targets
    info = real.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o600)
    assert (real.parent / "config.toml.lock").exists()  # the lock sits beside the real file
    assert sorted(os.listdir(link.parent)) == ["config.toml"]
