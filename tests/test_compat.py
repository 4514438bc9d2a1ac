"""Configs and command lines written for the Rust pdb-sync load and run here."""

from __future__ import annotations

from pathlib import Path

import orjson
from conftest import run_cli, write_config

from pdbsync.config.load import load_config, target_options

#: A config as the Rust tool's documentation and history show them (github.com/N283T/pdb-sync).
RUST_CONFIG = """\
[paths]
pdb_dir = "{pdb_dir}"

[paths.data_type_dirs]
structures = "/mnt/ssd/pdb/structures"

[sync]
mirror = "rcsb"  # Default mirror (not used for custom configs)
layout = "divided"
data_types = ["structures"]

[sync.defaults]
compress = true
timeout = 300

[sync.custom.structures]
url = "{url}"
dest = "data/structures"
description = "PDB structures"
preset = "fast"
delete = false

[sync.custom.structures.options]
max_size = "5GB"
exclude = ["obsolete/"]

[mirror_selection]
auto_select = false
preferred_region = "jp"
latency_cache_ttl = 3600

[download]
auto_decompress = true
parallel = 4
"""


def _rust_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(RUST_CONFIG.format(pdb_dir=tmp_path / "pdb", url=url))
    return path


def test_a_rust_config_loads_with_one_warning_naming_the_unused_keys(tmp_path, mirror):
    path = _rust_config(tmp_path, mirror.url("ftp_data", "sifts/"))
    result = run_cli("--config", str(path), "config", "validate")
    assert result.code == 0, result.stderr
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("pdb-sync: warning: ")
    for key in ("paths.data_type_dirs", "sync.layout", "sync.data_types", "download"):
        assert key in warning
    assert "config migrate" in warning
    config = load_config(path)
    resolved = target_options(config, "structures")
    # A bare option on the target is the Rust tool's legacy key: the preset beats it.
    assert resolved.delete is True and resolved.source("delete") == "preset fast"
    assert resolved.timeout == 300 and resolved.exclude == ("obsolete/",)


def test_typos_are_still_errors_with_a_hint(tmp_path, mirror):
    path = _rust_config(tmp_path, mirror.url("ftp_data", "sifts/"))
    path.write_text(path.read_text().replace('mirror = "rcsb"', 'mirorr = "rcsb"'))
    result = run_cli("--config", str(path), "config", "validate")
    assert result.code == 2
    assert "sync: unknown key 'mirorr' (did you mean 'mirror'?)" in result.stderr


def test_migrate_removes_the_rust_only_keys_and_keeps_the_meaning(tmp_path, mirror):
    path = _rust_config(tmp_path, mirror.url("ftp_data", "sifts/"))
    before = target_options(load_config(path), "structures").values()
    result = run_cli("--config", str(path), "config", "migrate")
    assert result.code == 0, result.stderr
    assert "removed paths.data_type_dirs" in result.text and "removed download" in result.text
    migrated = load_config(path)
    assert migrated.warnings == ()
    assert target_options(migrated, "structures").values() == before
    text = path.read_text()
    assert "data_type_dirs" not in text and "[download]" not in text
    assert "preferred_region" in text  # implemented keys stay
    assert "rsync_delete" not in text and "\ndelete = false" not in text  # preset beat it


def test_bare_sync_runs_every_target_and_the_short_flags_work(tmp_path, mirror):
    config = write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"},
            "emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"},
        },
    )
    preview = run_cli("--config", str(config), "sync", "-n", "-z", "-c", "--format", "json")
    assert preview.code == 0, preview.stderr
    argvs = {e["name"]: e["argv"] for e in preview.events if e["type"] == "dry_run"}
    assert set(argvs) == {"sifts", "emdb"}
    assert all("-z" in argv and "-c" in argv and "-n" in argv for argv in argvs.values())
    assert not (tmp_path / "pdb").exists()
    other_root = tmp_path / "elsewhere"
    result = run_cli("--config", str(config), "sync", "-d", str(other_root), "--format", "json")
    assert result.code == 0, result.stderr
    summary = result.events[-1]["summary"]
    assert [r["name"] for r in summary["results"]] == ["sifts", "emdb"]
    assert (other_root / "sifts").is_dir() and (other_root / "emdb").is_dir()
    assert not (tmp_path / "pdb").exists()


def test_config_list_json_of_a_rust_config(tmp_path, mirror):
    path = _rust_config(tmp_path, mirror.url("ftp_data", "sifts/"))
    rows = orjson.loads(run_cli("--config", str(path), "config", "list", "--format", "json").stdout)
    assert rows[0]["url"] == mirror.url("ftp_data", "sifts/") and rows[0]["mirror"] is None
