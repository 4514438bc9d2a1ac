"""Config discovery and validation: every bad input is one clear line and exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import run_cli, write_config

from pdbsync import paths
from pdbsync.config.load import (
    SHARED_TREE_HELP,
    check_file,
    dest_overlaps,
    find_config,
    load_config,
)
from pdbsync.errors import ConfigError

GOOD_URL = "rsync://127.0.0.1:873/ftp_data/structures/divided/mmCIF/"


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


def _target(url: str = GOOD_URL, dest: str = "mmCIF", name: str = "mmcif") -> str:
    return (
        f'[paths]\npdb_dir = "/srv/pdb"\n[sync.custom."{name}"]\nurl = "{url}"\ndest = "{dest}"\n'
    )


def _fails(config: Path, *args: str) -> str:
    result = run_cli("--config", str(config), "sync", *args)
    assert result.code == 2, (result.code, result.stderr)
    assert result.stdout == b""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_missing_config_file_names_the_path(tmp_path):
    message = _fails(tmp_path / "nope.toml", "--all")
    assert "nope.toml: config file not found" in message
    assert "pdb-sync config init" in message


def test_directory_as_config_is_rejected(tmp_path):
    assert "is a directory" in _fails(tmp_path, "--all")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_config_is_rejected(tmp_path):
    path = _config(tmp_path, _target())
    path.chmod(0)
    assert "not readable" in _fails(path, "--all")


def test_toml_syntax_error_gives_the_line(tmp_path):
    path = _config(tmp_path, '[paths]\npdb_dir = "/x"\n[sync.custom.a]\nurl = \n')
    message = _fails(path, "--all")
    assert "TOML syntax error" in message and "line 4" in message


def test_misspelled_key_is_named_with_a_suggestion(tmp_path):
    path = _config(tmp_path, _target().replace("dest =", "dset ="))
    message = _fails(path, "--all")
    assert "sync.custom.mmcif: unknown key 'dset' (did you mean 'dest'?)" in message


def test_unknown_top_level_table_is_named(tmp_path):
    path = _config(tmp_path, _target() + "[sink]\nx = 1\n")
    assert "unknown key 'sink'" in _fails(path, "--all")


def test_missing_url_is_named(tmp_path):
    path = _config(tmp_path, '[sync.custom.a]\ndest = "a"\n')
    assert "sync.custom.a: missing required key 'url'" in _fails(path, "--all")


def test_wrong_type_is_named(tmp_path):
    path = _config(tmp_path, '[sync.custom.a]\nurl = 5\ndest = "a"\n')
    assert "sync.custom.a.url: must be of type string" in _fails(path, "--all")


@pytest.mark.parametrize("name", ["my target", "a/b", "x;rm", "-dash", "é"])
def test_unsafe_target_names_are_rejected(tmp_path, name):
    message = _fails(_config(tmp_path, _target(name=name)), "--all")
    assert "is not allowed" in message and "sync.custom." in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rsync://host/mod/x; rm -rf ~", "unsafe"),
        ("host::mod/$(whoami)", "unsafe"),
        ("host::mod/x --delete", "unsafe"),
        ("--rsh=evil::mod/", "embedded rsync option"),
        ("host::mod/--delete", "embedded rsync option"),
        ("rsync://host/mod/../etc/", "'..'"),
        ("/srv/local/path", "not an rsync daemon URL"),
        ("http://files.wwpdb.org/pub/", "not an rsync daemon URL"),
        ("rsync://host:99999/mod/", "outside 1..65535"),
        ("rsync://host/", "names no rsync module"),
    ],
)
def test_bad_urls_are_rejected(tmp_path, url, expected):
    message = _fails(_config(tmp_path, _target(url=url)), "--all")
    assert "sync.custom.mmcif.url" in message and expected in message


@pytest.mark.parametrize(
    ("dest", "expected"),
    [
        ("/abs/path", "is absolute"),
        ("../outside", "escapes pdb_dir"),
        ("a/../../b", "escapes pdb_dir"),
        ("~/x", "is absolute"),
    ],
)
def test_bad_dests_are_rejected(tmp_path, dest, expected):
    message = _fails(_config(tmp_path, _target(dest=dest)), "--all")
    assert "sync.custom.mmcif.dest" in message and expected in message


@pytest.mark.parametrize("dest", [".", "./", "./.", ".//."])
def test_dest_that_is_pdb_dir_itself_is_rejected(tmp_path, dest):
    """A target with delete in pdb_dir itself would wipe every other target's tree."""
    message = _fails(_config(tmp_path, _target(dest=dest)), "--all")
    assert f"sync.custom.mmcif.dest: {dest!r} is pdb_dir itself" in message


def test_empty_dest_is_one_problem(tmp_path):
    path = _config(tmp_path, _target(dest=""))
    assert "sync.custom.mmcif.dest: '' should be non-empty" in _fails(path, "--all")
    result = run_cli("--config", str(path), "config", "validate")
    assert result.code == 2 and len(result.stderr.splitlines()) == 1


def _two_targets(tmp_path: Path, first: str, second: str) -> Path:
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "structures": {"url": GOOD_URL, "dest": first},
            "mmcif": {"url": GOOD_URL, "dest": second},
        },
    )


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (
            "structures",
            "structures/divided/mmCIF",
            "sync.custom.mmcif.dest: 'structures/divided/mmCIF' is inside "
            "sync.custom.structures.dest 'structures'; targets must not share a tree "
            "(one could delete the other's files)",
        ),
        (
            "structures/divided/mmCIF",
            "./structures/",
            "sync.custom.structures.dest: 'structures/divided/mmCIF' is inside "
            "sync.custom.mmcif.dest './structures/'; targets must not share a tree",
        ),
        (
            "mmCIF",
            "./mmCIF/",
            "sync.custom.mmcif.dest: './mmCIF/' is the same directory as "
            "sync.custom.structures.dest 'mmCIF'; targets must not share a tree",
        ),
    ],
)
def test_overlapping_dests_are_rejected_naming_both_keys(tmp_path, first, second, expected):
    message = _fails(_two_targets(tmp_path, first, second), "--all")
    assert expected in message


@pytest.mark.parametrize(("first", "second"), [("mmCIF", "mmCIF2"), ("a/b", "a/c"), ("ab", "a")])
def test_sibling_dests_with_a_common_prefix_are_fine(tmp_path, first, second):
    config = load_config(_two_targets(tmp_path, first, second))
    assert [t.dest for t in config.targets.values()] == [first, second]


def test_unknown_target_on_command_line_lists_known_ones(tmp_path):
    message = _fails(_config(tmp_path, _target()), "mmcfi")
    assert "unknown target 'mmcfi'" in message and "known targets: mmcif" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", "between 1 and 100"), ("101", "between 1 and 100"), ("x", "whole number")],
)
def test_parallel_outside_range_is_rejected(tmp_path, value, expected):
    message = _fails(_config(tmp_path, _target()), "--all", "--parallel", value)
    assert "--parallel" in message and expected in message


def test_bare_sync_of_a_config_without_targets_is_a_usage_error(tmp_path):
    # A bare `sync` runs every target (as in the Rust pdb-sync); with none, nothing can run.
    assert "no targets defined" in _fails(_config(tmp_path, '[paths]\npdb_dir = "/srv/pdb"\n'))


def test_no_mirror_root_anywhere_is_rejected(tmp_path):
    body = f'[sync.custom.a]\nurl = "{GOOD_URL}"\ndest = "a"\n'
    assert "no mirror root" in _fails(_config(tmp_path, body), "--all")


def test_valid_urls_are_accepted(tmp_path):
    for url in (
        "rsync.wwpdb.org::ftp_data/structures/divided/mmCIF/",
        "rsync://rsync.rcsb.org:33444/ftp_data/structures/",
        "data.pdbj.org::rsync/pub/pdb/",
        "rsync.ebi.ac.uk::pub/databases/pdb/data/structures/divided/mmCIF/",
    ):
        config = load_config(_config(tmp_path, _target(url=url)))
        assert config.targets["mmcif"].url == url


def test_config_discovery_order(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "pdb-sync").mkdir(parents=True)
    (xdg / "pdb-sync" / "config.toml").write_text("")
    home = tmp_path / "home"
    env = {"XDG_CONFIG_HOME": str(xdg), "HOME": str(home)}
    assert find_config(None, env) == xdg / "pdb-sync" / "config.toml"
    assert find_config(None, {**env, "PDB_SYNC_CONFIG": "/e.toml"}) == Path("/e.toml")
    assert find_config("/c.toml", {**env, "PDB_SYNC_CONFIG": "/e.toml"}) == Path("/c.toml")
    assert find_config(None, {"HOME": str(home)}) == home / ".config/pdb-sync/config.toml"


def test_pdb_sync_config_env_is_used_by_the_cli(tmp_path):
    path = write_config(tmp_path / "c.toml", tmp_path, {"x": {"url": GOOD_URL, "dest": "x"}})
    result = run_cli("sync", "--list", environ={"PDB_SYNC_CONFIG": str(path)})
    assert result.code == 0 and "x" in result.text


def test_relative_pdb_dir_is_relative_to_the_config_file(tmp_path):
    path = _config(
        tmp_path, f'[paths]\npdb_dir = "mirror"\n[sync.custom.a]\nurl = "{GOOD_URL}"\ndest = "a"\n'
    )
    assert load_config(path).pdb_dir == tmp_path / "mirror"


def test_config_error_keeps_every_problem(tmp_path):
    body = _target(url="/local", dest="/abs")
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, body))
    assert len(caught.value.problems) == 2


def test_list_shows_name_description_url_and_dest(tmp_path):
    path = write_config(
        tmp_path / "c.toml",
        tmp_path,
        {"mmcif": {"url": GOOD_URL, "dest": "mmCIF", "description": "divided mmCIF"}},
    )
    result = run_cli("--config", str(path), "sync", "--list")
    assert result.code == 0
    assert "mmcif  divided mmCIF" in result.text
    assert f"url:  {GOOD_URL}" in result.text and "dest: mmCIF" in result.text
    listed = run_cli("--config", str(path), "sync", "--list", "--format", "json")
    assert listed.events[0] == [
        {
            "name": "mmcif",
            "description": "divided mmCIF",
            "url": GOOD_URL,
            "dest": "mmCIF",
            "mirror": None,  # the target gives its own url
            "mirror_reason": "url",
        }
    ]


# -- control characters, retry_delay, many targets ----------------------------------


def _validate_fails(config: Path) -> str:
    result = run_cli("--config", str(config), "config", "validate")
    assert result.code == 2, (result.code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("escape", ["\\u0000", "\\t", "\\u001b", "\\u007f", "\\u0007"])
def test_a_control_character_in_a_url_is_refused_before_anything_runs(tmp_path, escape):
    path = _config(tmp_path, _target(url=f"rsync://127.0.0.1/ftp_data/x{escape}y/"))
    for message in (_fails(path, "--all"), _validate_fails(path)):
        assert "sync.custom.mmcif.url" in message and "contains a control character" in message


@pytest.mark.parametrize("escape", ["\\t", "\\u001b", "\\u007f", "\\u0001"])
def test_a_control_character_in_a_dest_is_refused(tmp_path, escape):
    path = _config(tmp_path, _target(dest=f"mm{escape}CIF"))
    for message in (_fails(path, "--all"), _validate_fails(path)):
        assert "sync.custom.mmcif.dest" in message and "contains a control character" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("inf", "must be a finite number of seconds"),
        ("-inf", "is less than the minimum of 0"),  # the schema's word
        ("nan", "must be a finite number of seconds"),
        ("1e10", "must be at most 86400 seconds"),
        ("86400.5", "must be at most 86400 seconds"),
    ],
)
def test_retry_delay_must_be_finite_and_at_most_a_day(tmp_path, value, expected):
    path = _config(tmp_path, _target() + f"[sync.custom.mmcif.options]\nretry_delay = {value}\n")
    for message in (_fails(path, "--all"), _validate_fails(path)):
        assert "sync.custom.mmcif.options.retry_delay" in message and expected in message
    defaults = _config(tmp_path, f"[sync.defaults]\nretry_delay = {value}\n" + _target())
    assert "sync.defaults.retry_delay" in _validate_fails(defaults)


def test_a_retry_delay_of_a_day_is_fine(tmp_path):
    path = _config(tmp_path, _target() + "[sync.custom.mmcif.options]\nretry_delay = 86400\n")
    assert run_cli("--config", str(path), "config", "validate").code == 0


def test_each_nested_target_is_reported_once_with_the_nearest_enclosing_one(tmp_path):
    path = write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "mmcif": {"url": GOOD_URL, "dest": "structures/divided/mmCIF"},
            "all": {"url": GOOD_URL, "dest": "structures"},
            "divided": {"url": GOOD_URL, "dest": "structures/divided"},
            "copy": {"url": GOOD_URL, "dest": "structures/divided/mmCIF/"},
            "sifts": {"url": GOOD_URL, "dest": "sifts"},
        },
    )
    result = run_cli("--config", str(path), "config", "validate")
    assert result.code == 2
    help_ = "targets must not share a tree (one could delete the other's files)"
    assert result.stderr.splitlines() == [
        f"pdb-sync: error: {path}: {line}; {help_}"
        for line in (
            "sync.custom.mmcif.dest: 'structures/divided/mmCIF' is inside "
            "sync.custom.divided.dest 'structures/divided'",
            "sync.custom.divided.dest: 'structures/divided' is inside sync.custom.all.dest "
            "'structures'",
            "sync.custom.copy.dest: 'structures/divided/mmCIF/' is the same directory as "
            "sync.custom.mmcif.dest 'structures/divided/mmCIF'",
        )
    ]


def test_overlap_check_of_twenty_thousand_dests_is_one_pass(monkeypatch):
    """The config's check is the one sorted pass of pdbsync.paths.overlaps over all the
    dests at once (its work is counted in test_paths; its time for 20,000 targets is a
    row of scripts/bench.py), never a call per pair or per target."""
    calls = []
    one_pass = paths.overlaps

    def counted(entries):
        calls.append(len(entries))
        return one_pass(entries)

    monkeypatch.setattr(paths, "overlaps", counted)
    dests = {f"t{i}": f"group{i % 50}/d{i:05d}" for i in range(20_000)}
    dests["last"] = "group3/d00003/inner"
    assert dest_overlaps(dests) == [
        "sync.custom.last.dest: 'group3/d00003/inner' is inside sync.custom.t3.dest "
        f"'group3/d00003'; {SHARED_TREE_HELP}"
    ]
    assert calls == [20_001]


def test_validate_judges_resolved_dests_with_the_root_from_pdb_sync_dir(tmp_path):
    pdb, elsewhere = tmp_path / "pdb", tmp_path / "elsewhere"
    pdb.mkdir()
    elsewhere.mkdir()
    (pdb / "link").symlink_to(elsewhere)
    path = _config(tmp_path, f'[sync.custom.a]\nurl = "{GOOD_URL}"\ndest = "link/a"\n')
    assert check_file(path).problems == []  # no mirror root known: nothing to resolve against
    (problem,) = check_file(path, {"PDB_SYNC_DIR": str(pdb)}).problems
    assert problem == (
        f"{path}: sync.custom.a.dest: '{pdb}/link/a' resolves to '{elsewhere}/a', outside "
        f"pdb_dir '{pdb}'; refused: a symlink must not take rsync (and its deletes) out of "
        "the mirror"
    )
