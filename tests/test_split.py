"""Split targets (pdbsync.split.parts): a target as several rsyncs must leave exactly the tree
one rsync with the same options leaves, against a real daemon, with and without chroot."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import assert_valid_events, run_cli
from local_mirror import LocalMirror

from pdbsync.report.summary import SyncResult
from pdbsync.rsync.argv import RsyncArgv
from pdbsync.run.jobs import Job
from pdbsync.run.parts import merge_results
from pdbsync.split import parts as split

# -- a source tree with everything that can go wrong ----------------------------------


def make_source(root: Path) -> None:
    """Top-level directories of uneven sizes, top-level files, symlinks, files the
    filters include and exclude, a directory the filters exclude, names with wildcards."""
    rng = random.Random(7)
    for index, name in enumerate(["aa", "ab", "ac", "b1", "b2", "cx", "d[1]", "e*f", "zz"]):
        for number in range(1 + index * 3):
            path = root / name / f"sub{number % 3}" / f"f{number}.cif"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rng.randbytes(200 + 150 * index))
        (root / name / "scratch.tmp").write_text("excluded\n")
        (root / name / "keep.tmp").write_text("included\n")
    (root / "README").write_text("top-level file\n")
    (root / "top.tmp").write_text("excluded at the top\n")
    (root / "skipme").mkdir()
    (root / "skipme" / "x").write_text("excluded directory\n")
    (root / "latest").symlink_to("aa")
    (root / "ab" / "link.cif").symlink_to("sub0/f0.cif")


def make_local(dest: Path) -> None:
    """What the mirror had before: files and whole directories gone upstream, files to
    update (backups), excluded files that --delete must leave alone."""
    (dest / "gone-dir" / "deep").mkdir(parents=True)
    (dest / "gone-dir" / "deep" / "old.cif").write_text("removed upstream\n")
    (dest / "ab").mkdir(parents=True)
    (dest / "ab" / "stale.cif").write_text("removed upstream\n")
    (dest / "ab" / "local.tmp").write_text("excluded: protected from --delete\n")
    (dest / "aa" / "sub0").mkdir(parents=True)
    (dest / "aa" / "sub0" / "f0.cif").write_text("old content: backed up\n")
    (dest / "OLDREADME").write_text("top-level file removed upstream\n")
    (dest / "zz").mkdir()
    (dest / "zz" / "f0.cif~").write_text("an earlier backup\n")


def tree(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every path below ``root``: its type and content (a symlink: its target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", b"")
        else:
            found[rel] = ("file", path.read_bytes())
    return found


#: The target options of the equivalence tests, as TOML inline tables.
FILTERS = 'include = ["keep.tmp"], exclude = ["*.tmp", "/skipme"]'
OPTIONS = f"{{ delete = true, {FILTERS} }}"
BACKUP_OPTIONS = f"{{ delete = true, backup = true, {FILTERS} }}"


def write_config(path: Path, pdb_dir: Path, targets: dict[str, dict]) -> Path:
    """conftest's write_config, with ``options`` written as given (an inline table)."""
    lines = ["[paths]", f'pdb_dir = "{pdb_dir}"', ""]
    for name, fields in targets.items():
        lines.append(f'[sync.custom."{name}"]')
        for key, value in fields.items():
            text = value if key == "options" else orjson.dumps(value).decode()
            lines.append(f"{key} = {text}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def served(tmp_path: Path):
    """The source tree served as ``nochroot`` (use chroot = no, as the test daemons) and
    ``chroot`` (use chroot = yes, which mprsync and --files-from need)."""
    source = tmp_path / "source"
    source.mkdir()
    make_source(source)
    mirror = LocalMirror(source, tmp_path / "daemon")
    mirror.add_module("nochroot", source)
    mirror.add_module("chroot", source, **{"use chroot": "yes"})
    with mirror:
        yield source, mirror


def _sync(config: Path, *args: str) -> tuple[int, list[dict]]:
    result = run_cli("--config", str(config), "sync", "--all", "--format", "json", *args)
    assert result.code == 0, (result.stderr, result.stdout[-2000:])
    return result.code, result.events


@pytest.mark.parametrize("backup", [False, True], ids=["delete", "delete+backup"])
@pytest.mark.parametrize("module", ["nochroot", "chroot"])
def test_split_leaves_the_tree_one_rsync_leaves(served, tmp_path, module, backup):
    source, mirror = served
    url = mirror.url(module, "")
    options = BACKUP_OPTIONS if backup else OPTIONS
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "one": {"url": url, "dest": "one", "options": options},
            "many": {"url": url, "dest": "many", "options": options, "split": 3},
        },
    )
    for dest in ("one", "many"):
        make_local(tmp_path / "pdb" / dest)
    _code, events = _sync(config, "--parallel", "4")
    parts = {e["part"] for e in events if e["type"] == "sync_started" and e["name"] == "many"}
    assert parts == {1, 2, 3}, "the target did not run as three parts"
    one, many = tree(tmp_path / "pdb" / "one"), tree(tmp_path / "pdb" / "many")
    assert one == many
    # ... and that tree is the right one, not merely the same one:
    assert "OLDREADME" not in many and "ab/stale.cif" not in many
    assert "gone-dir/deep/old.cif" not in many
    if backup:  # deleted and replaced files are kept as NAME~, earlier backups stay
        assert many["OLDREADME~"] == ("file", b"top-level file removed upstream\n")
        assert many["aa/sub0/f0.cif~"] == ("file", b"old content: backed up\n")
        assert many["zz/f0.cif~"][0] == "file"
    else:  # a whole top-level directory gone upstream is gone
        assert "gone-dir" not in many and "aa/sub0/f0.cif~" not in many
    assert many["ab/local.tmp"][0] == "file" and "skipme" not in many
    assert many["ab/keep.tmp"][0] == "file"
    assert "aa/scratch.tmp" not in many and "top.tmp" not in many
    assert many["latest"][0] == "link" and many["README"][0] == "file"
    assert "d[1]/sub0/f0.cif" in many and "e*f/sub0/f0.cif" in many

    # Upstream changes after the listing (the next run reuses it): a new top-level
    # directory, a removed one, a new top-level file.
    shutil.rmtree(source / "b2")
    (source / "new-dir" / "x").mkdir(parents=True)
    (source / "new-dir" / "x" / "n.cif").write_text("added after the listing\n")
    (source / "NEWS").write_text("new top-level file\n")
    _code, events = _sync(config, "--parallel", "4")
    assert any(e["type"] == "sync_started" and e.get("parts") == 3 for e in events)
    one, many = tree(tmp_path / "pdb" / "one"), tree(tmp_path / "pdb" / "many")
    assert one == many
    assert "new-dir/x/n.cif" in many and "NEWS" in many
    assert ("b2" in many) is backup  # removed upstream (with backup: only its files)


# -- the target's filters, and parts that may only narrow them ----------------------------


def _pattern_file(tmp_path: Path, lines: list[str]) -> None:
    (tmp_path / "patterns").write_text("".join(f"{line}\n" for line in lines))


def _aa_has_local_data(source: Path, pdb: Path) -> None:
    for dest in ("one", "many"):
        (pdb / dest / "aa").mkdir(parents=True, exist_ok=True)
        (pdb / dest / "aa" / "local-only.cif").write_text("only here: excluded, so kept\n")


def _exclude_case(source: Path, tmp_path: Path) -> None:
    _aa_has_local_data(source, tmp_path / "pdb")
    for dest in ("one", "many"):
        (tmp_path / "pdb" / dest / "zz").mkdir()
        (tmp_path / "pdb" / dest / "zz" / "local.cif").write_text("excluded: kept\n")
    (source / "new.tmp").mkdir()  # new upstream after the listing, and excluded
    (source / "new.tmp" / "x.cif").write_text("excluded\n")


def _flip_case_before(source: Path, tmp_path: Path) -> None:
    (source / "flip.tmp").mkdir()
    # the biggest directory, so that a part of its own (not the catch-all) has it
    (source / "flip.tmp" / "f.cif").write_bytes(b"a directory: '+ */' takes it\n" * 9999)


def _flip_case(source: Path, tmp_path: Path) -> None:
    # The listing (kept, same filters) has the directory; upstream it is now a file,
    # which the target's "- *.tmp" excludes.
    shutil.rmtree(source / "flip.tmp")
    (source / "flip.tmp").write_text("a file now: '- *.tmp' takes it\n")


def _fewer_patterns(lines: list[str]) -> Any:
    def change(source: Path, tmp_path: Path) -> None:
        _pattern_file(tmp_path, lines)
        shutil.rmtree(tmp_path / "pdb")

    return change


def _more_excluded_and_local_data(source: Path, tmp_path: Path) -> None:
    _pattern_file(tmp_path, ["*.tmp", "/aa", "/zz"])
    _aa_has_local_data(source, tmp_path / "pdb")
    shutil.rmtree(source / "zz")  # gone upstream, but now excluded: kept


#: case -> (options as TOML, the patterns file's lines, what changes before the second
#: run, which top-level names the final tree must not have, paths it must have). The first
#: run makes the listing; the second reuses it unless the filters changed.
FILTER_CASES = {
    "exclude": (
        '{ delete = true, exclude = ["*.tmp", "/aa", "/zz"] }',
        [],
        None,
        _exclude_case,
        {"new.tmp"},
        {"aa/local-only.cif", "zz/local.cif"},
    ),
    "include+exclude": (
        '{ delete = true, include = ["*/"], exclude = ["*.tmp"] }',
        [],
        _flip_case_before,
        _flip_case,
        {"flip.tmp", "top.tmp"},
        {"aa/sub0/f0.cif"},
    ),
    "exclude_from": (
        '{ exclude_from = "PATTERNS" }',
        ["*.tmp"],
        None,
        _fewer_patterns(["*.tmp", "/aa", "/b1", "/cx", "/zz"]),
        {"aa", "b1", "cx", "zz", "top.tmp"},
        {"ab/sub0/f0.cif"},
    ),
    "include_from": (
        '{ include_from = "PATTERNS", exclude = ["/*"] }',
        ["aa/", "ab/", "ac/", "b1/", "b2/", "cx/", "zz/"],
        None,
        _fewer_patterns(["aa/", "ab/", "b1/", "b2/", "zz/"]),
        {"ac", "cx", "README", "skipme"},
        {"zz/sub0/f0.cif", "ab/scratch.tmp"},
    ),
    "delete+excluded": (
        '{ delete = true, exclude_from = "PATTERNS" }',
        ["*.tmp"],
        None,
        _more_excluded_and_local_data,
        {"top.tmp"},
        {"aa/local-only.cif", "zz/sub0/f0.cif"},
    ),
}


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_split_keeps_the_targets_filters(served, tmp_path, case):
    """Each filter option, and --delete beside excluded names in the destination: the
    split target's tree (and before it, its --plan) is that of one rsync with the same
    options, also when the filters or the source changed after the listing the second
    run starts from."""
    source, mirror = served
    options, lines, before, between, absent, present = FILTER_CASES[case]
    _pattern_file(tmp_path, lines)
    options = options.replace("PATTERNS", str(tmp_path / "patterns"))
    url = mirror.url("nochroot", "")
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "one": {"url": url, "dest": "one", "options": options},
            "many": {"url": url, "dest": "many", "options": options, "split": 3},
        },
    )
    if before:
        before(source, tmp_path)
    _sync(config, "--parallel", "4")
    between(source, tmp_path)
    plan = run_cli("--config", str(config), "sync", "--all", "--plan", "--format", "json")
    assert plan.code == 0, plan.stderr
    plans = {e["name"]: e for e in plan.events if e["type"] == "plan"}
    keys = ("files_total", "total_size", "to_create", "to_update", "to_delete")
    assert {k: plans["many"][k] for k in keys} == {k: plans["one"][k] for k in keys}
    _code, events = _sync(config, "--parallel", "4")
    parts = {e["part"] for e in events if e["type"] == "sync_started" and e["name"] == "many"}
    assert parts == {1, 2, 3}, "the target did not run as three parts"
    one, many = tree(tmp_path / "pdb" / "one"), tree(tmp_path / "pdb" / "many")
    assert one == many, sorted(set(one) ^ set(many))
    assert not absent & {path.split("/")[0] for path in many}
    assert present <= set(many)


@pytest.mark.parametrize("option", ["exclude_from", "include_from"])
def test_a_changed_pattern_file_is_listed_again(served, tmp_path, _own_state_dir, option):
    """The kept listing is keyed on the pattern file's contents, not only its name: a
    changed file lists the source again; an unchanged one reuses the listing."""
    _source, mirror = served
    patterns = tmp_path / "patterns"
    rules = {"exclude_from": ["/aa", "/b1"], "include_from": ["/aa/***", "/b1/***", "- *"]}
    patterns.write_text("")
    options = f'{{ {option} = "{patterns}" }}'
    url = mirror.url("nochroot", "")
    config = write_config(
        tmp_path / "c.toml", tmp_path / "pdb", {"t": {"url": url, "dest": "t", "options": options}}
    )

    def run() -> tuple[str, set[str]]:
        result = run_cli("--config", str(config), "-v", "sync", "t", "--split", "2")
        assert result.code == 0, result.stderr
        kept = orjson.loads((_own_state_dir / split.LISTING_FILE).read_bytes())
        return result.stderr, set(kept["t"]["dirs"])

    log, dirs = run()
    assert "t: listed" in log and {"aa", "b1", "zz"} <= dirs
    log, _dirs = run()
    assert "t: sizes from the listing" in log, "an unchanged file must reuse the listing"
    patterns.write_text("".join(f"{rule}\n" for rule in rules[option]))
    log, dirs = run()
    assert "t: listed" in log, "the listing of the old patterns was reused"
    assert ({"aa", "b1"} <= dirs) is (option == "include_from")
    assert ("zz" in dirs) is (option == "exclude_from")


def test_a_pattern_file_that_clears_the_rules_is_not_split(served, tmp_path):
    """A '!' line in a pattern file clears every rule before it, a part's own too (each
    part would copy the whole tree at once): such a target runs as one rsync."""
    _source, mirror = served
    _pattern_file(tmp_path, ["*.tmp", "!", "/aa"])
    options = f'{{ exclude_from = "{tmp_path / "patterns"}" }}'
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"t": {"url": mirror.url("nochroot", ""), "dest": "t", "options": options, "split": 3}},
    )
    result = run_cli("--config", str(config), "-v", "sync", "t", "--format", "json")
    assert result.code == 0, result.stderr
    started = [e for e in result.events if e["type"] == "sync_started"]
    assert [e.get("parts") for e in started] == [None]
    assert "has a '!' line, which would clear each part's filter rules" in result.stderr
    copied = {path.split("/")[0] for path in tree(tmp_path / "pdb" / "t")}
    assert "aa" not in copied and "top.tmp" in copied


def test_parts_report_as_one_target_with_a_parts_list(served, tmp_path):
    _source, mirror = served
    url = mirror.url("nochroot", "")
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"whole": {"url": url, "dest": "whole"}, "split": {"url": url, "dest": "split"}},
    )
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config", str(config), "sync", "split", "--split", "4", "--parallel", "4",
        "--format", "json", "--summary", str(summary),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    events = result.events
    assert_valid_events(events)
    finished = [e for e in events if e["type"] == "sync_finished"]
    part_ends = [i for i, e in enumerate(events) if e["type"] == "part_finished"]
    assert len(finished) == 1 and len(part_ends) == 4
    assert events.index(finished[0]) > max(part_ends), "sync_finished came before a part's end"
    for event in events:
        if event["type"] in ("output", "progress", "sync_started", "part_finished"):
            assert event["name"] == "split" and event["parts"] == 4 and 1 <= event["part"] <= 4
    assert events[0]["targets"] == ["split"]
    data = orjson.loads(summary.read_bytes())
    (entry,) = data["results"]
    assert entry["status"] == "success" and len(entry["parts"]) == 4
    assert [p["part"] for p in entry["parts"]] == [1, 2, 3, 4]
    assert all(p["status"] == "success" for p in entry["parts"])
    assert entry["files_transferred"] == sum(p["files_transferred"] for p in entry["parts"])

    whole = run_cli("--config", str(config), "sync", "whole", "--format", "json")
    (single,) = [e["result"] for e in whole.events if e["type"] == "sync_finished"]
    for key in ("files_total", "total_size", "files_created", "files_total_by_type"):
        assert entry["stats"][key] == single["stats"][key], key
    assert entry["files_transferred"] == single["files_transferred"]
    assert entry["bytes_transferred"] == single["bytes_transferred"]


def test_text_lines_name_the_part(served, tmp_path):
    _source, mirror = served
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"t": {"url": mirror.url("nochroot", ""), "dest": "t", "split": 2}},
    )
    result = run_cli("--config", str(config), "sync", "t", "--parallel", "2")
    assert result.code == 0, result.stderr
    lines = result.text.splitlines()
    assert any(line.startswith("[t 1/2] Completed in") for line in lines)
    assert any(line.startswith("[t 2/2] Completed in") for line in lines)
    assert sum(line.startswith("[t] Completed in") for line in lines) == 1


@pytest.mark.parametrize("prepared", [False, True])
def test_a_plan_of_a_split_target_has_the_numbers_of_one_rsync(served, tmp_path, prepared):
    _source, mirror = served
    url = mirror.url("nochroot", "")
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "one": {"url": url, "dest": "one", "options": OPTIONS},
            "many": {"url": url, "dest": "many", "options": OPTIONS, "split": 3},
        },
    )
    if prepared:
        for dest in ("one", "many"):
            make_local(tmp_path / "pdb" / dest)
    result = run_cli("--config", str(config), "sync", "--all", "--plan", "--format", "json")
    assert result.code == 0, result.stderr
    plans = {e["name"]: e for e in result.events if e["type"] == "plan"}
    assert set(plans) == {"one", "many"}, "one plan event per target, parts merged"
    keys = ("files_total", "total_size", "to_create", "to_update", "to_delete")
    assert {k: plans["many"][k] for k in keys} == {k: plans["one"][k] for k in keys}
    assert plans["many"]["bytes_to_transfer"] == plans["one"]["bytes_to_transfer"]
    assert (plans["one"]["to_delete"] > 0) is prepared
    assert not (tmp_path / "pdb" / "many").exists() or prepared, "a plan created the dest"


def test_a_failed_part_fails_its_target_and_is_named(tmp_path):
    """One directory the daemon cannot read: only the part that owns it fails."""
    source = tmp_path / "source"
    source.mkdir()
    make_source(source)
    os.chmod(source / "zz" / "sub0" / "f0.cif", 0)
    mirror = LocalMirror(source, tmp_path / "daemon")
    mirror.add_module("unreadable", source, uid="nobody", gid="nogroup")
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"t": {"url": mirror.url("unreadable", ""), "dest": "t", "split": 3}},
    )
    summary = tmp_path / "s.json"
    with mirror:
        result = run_cli(
            "--config", str(config), "sync", "t", "--parallel", "3", "--summary", str(summary)
        )
    assert result.code == 1
    (entry,) = orjson.loads(summary.read_bytes())["results"]
    failed = [p for p in entry["parts"] if p["status"] == "failed"]
    assert entry["status"] == "failed" and len(failed) == 1
    assert [p["status"] for p in entry["parts"]].count("success") == 2
    assert entry["error"].startswith(f"part {failed[0]['part']}/3: ")
    assert entry["exit_code"] == failed[0]["exit_code"] == 23


def test_fail_fast_skips_the_parts_not_started(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    make_source(source)
    for top in ("aa", "ab", "ac", "b1", "b2", "cx", "zz"):
        os.chmod(next((source / top).rglob("*.cif")), 0)  # every part fails
    mirror = LocalMirror(source, tmp_path / "daemon")
    mirror.add_module("unreadable", source, uid="nobody", gid="nogroup")
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"t": {"url": mirror.url("unreadable", ""), "dest": "t", "split": 3}},
    )
    summary = tmp_path / "s.json"
    with mirror:
        result = run_cli(
            "--config", str(config), "sync", "t", "--fail-fast", "--summary", str(summary)
        )
    assert result.code == 1
    (entry,) = orjson.loads(summary.read_bytes())["results"]
    assert [p["status"] for p in entry["parts"]].count("failed") == 1
    assert [p["status"] for p in entry["parts"]].count("skipped") == 2
    assert entry["status"] == "failed"


def _two_connections(source: Path, tmp_path: Path) -> tuple[LocalMirror, Path]:
    """A daemon module that takes two connections at once (each transfer holds its
    connection 0.3 s), and a config with one target over it, ``split = 4``."""
    mirror = LocalMirror(source, tmp_path / "limited")
    mirror.add_module(
        "two",
        source,
        delay=0.3,
        **{"max connections": "2", "lock file": str(tmp_path / "two.lock")},
    )
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"t": {"url": mirror.url("two", ""), "dest": "t", "split": 4}},
    )
    return mirror, config


def test_the_host_cap_keeps_connections_under_the_daemons_limit(served, tmp_path):
    """A module that takes two connections: split 4 with --max-per-host 2 succeeds; with
    the cap above the daemon's limit, the refusals show (exit 5, max connections)."""
    source, _mirror = served
    mirror, config = _two_connections(source, tmp_path)
    with mirror:
        capped = run_cli(
            "--config", str(config), "sync", "t", "--parallel", "4", "--max-per-host", "2",
            "--format", "json",
        )  # fmt: skip
        assert capped.code == 0, capped.stderr
        shutil.rmtree(tmp_path / "pdb")
        over = run_cli(
            "--config", str(config), "sync", "t", "--parallel", "4", "--max-per-host", "4",
            "--format", "json",
        )  # fmt: skip
    assert over.code == 1
    (result,) = [e["result"] for e in over.events if e["type"] == "sync_finished"]
    assert result["exit_code"] == 5 and "max connections (2) reached" in result["error"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--split", "0"), "--split: must be 'auto' or 1..100, got 0"),
        (("--split", "many"), "--split: expected a number of parts or 'auto', got 'many'"),
        (("--max-per-host", "0"), "--max-per-host: must be between 1 and 100, got 0"),
    ],
)
def test_bad_split_flags_are_one_line_and_exit_2(four_targets, args, needle):
    result = run_cli("--config", str(four_targets), "sync", "mmcif", *args)
    assert result.code == 2
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_bad_split_key_names_it(tmp_path):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"t": {"url": "rsync://127.0.0.1/m/", "dest": "t", "split": 0}},
    )
    result = run_cli("--config", str(config), "sync", "t")
    assert result.code == 2
    assert 'sync.custom.t.split: must be "auto" or a whole number' in result.stderr


# -- the pure parts -----------------------------------------------------------------------


def test_parts_are_balanced_by_bytes():
    rng = random.Random(3)
    sizes = {f"{a}{b}": rng.randint(1_000, 3_000_000) for a in "0123456789" for b in "abcdefgh"}
    groups = split.balance(sizes, 4)
    loads = [sum(sizes[name] for name in group) for group in groups]
    ideal = sum(sizes.values()) / 4
    assert max(abs(load - ideal) / ideal for load in loads) < 0.01
    assert sorted(name for group in groups for name in group) == sorted(sizes)


def test_patterns_match_exactly_the_names(tmp_path):
    """Checked by rsync itself: a local copy with a part's filters copies exactly its
    names, wildcard characters in names included."""
    names = ["ab", "ac", "ad", "x*y", "q[1]", "a", "back\\slash"]
    for name in [*names, "ae", "xzy", "q1", "b"]:
        (tmp_path / "src" / name).mkdir(parents=True)
        (tmp_path / "src" / name / "f").write_text(name)
    groups = [names, ["ae", "xzy", "q1", "b"]]
    for index, expected in enumerate(groups):
        dest = tmp_path / f"d{index}"
        subprocess.run(
            ["rsync", "-a", *split.part_filters(groups, index), f"{tmp_path / 'src'}/", str(dest)],
            check=True,
        )
        assert sorted(p.name for p in dest.iterdir()) == sorted(expected)


def _copied_by_each_part(src: Path, groups: list[list[str]], work: Path) -> list[list[str]]:
    """What a local rsync with each part's filters (and ``--delete`` into a destination
    that has every name) copies and deletes: the top-level names it touches."""
    touched = []
    for index in range(len(groups)):
        dest = work / f"d{index}"
        subprocess.run(
            ["rsync", "-a", *split.part_filters(groups, index), f"{src}/", str(dest)], check=True
        )
        copied = {p.name for p in dest.iterdir()}
        assert all((dest / name / "f").is_file() for name in copied), "a part hid a deep file"
        stale = work / f"stale{index}"
        for name in os.listdir(src):
            (stale / name).mkdir(parents=True)
        subprocess.run(
            ["rsync", "-a", "--delete", *split.part_filters(groups, index), f"{work}/empty/",
             f"{stale}/"],
            check=True,
        )  # fmt: skip
        kept = set(os.listdir(stale))
        assert kept == set(os.listdir(src)) - copied, "a part deleted a name it does not own"
        touched.append(sorted(copied))
    return touched


def test_every_top_level_name_goes_to_exactly_one_part(tmp_path):
    """Checked by rsync itself, over random names made of the characters rsync's
    patterns treat specially and of each other's prefixes: each part copies (and
    deletes) exactly its own names, the catch-all the rest, also names no part has
    (new upstream, or non-ASCII, which a pattern's ``[...]`` would match byte by byte)."""
    rng = random.Random(13)
    letters = "ab1*?[]\\!^-. x"
    for round_number in range(8):
        work = tmp_path / str(round_number)
        (work / "empty").mkdir(parents=True)
        names = {"".join(rng.choice(letters) for _ in range(rng.randint(1, 4))) for _ in range(30)}
        names = sorted(n for n in names if split.ruleable(n) and n not in (".", ".."))
        for name in names:
            (work / "src" / name).mkdir(parents=True)
            (work / "src" / name / "f").write_text(name)
        unknown = set(rng.sample(names, 4))  # upstream since the listing: in no group
        for name in ("é", "aé", "ab\u00e9"):  # non-ASCII: never in a group (ruleable)
            assert not split.ruleable(name)
            (work / "src" / name).mkdir(parents=True, exist_ok=True)
            (work / "src" / name / "f").write_text(name)
            unknown.add(name)
        groups: list[list[str]] = [[] for _ in range(rng.randint(2, 4))]
        for name in names:
            if name not in unknown:
                rng.choice(groups).append(name)
        groups = [g for g in groups[:-1] if g] + [groups[-1]]
        touched = _copied_by_each_part(work / "src", groups, work)
        expected = [sorted(g) for g in groups[:-1]] + [sorted(set(groups[-1]) | unknown)]
        assert touched == expected, (round_number, groups)


def test_a_kept_listing_is_for_the_same_size_bounds_only(tmp_path):
    """--max-size/--min-size do not change what rsync lists but what it moves, so the
    sizes (and the kept listing) are for the bounds they were counted under."""
    lines = [
        "-rw-r--r--            500 2025/01/01 00:00:00 ab/small",
        "-rw-r--r--      5,000,000 2025/01/01 00:00:00 ab/big",
        "-rw-r--r--         20,000 2025/01/01 00:00:00 cd/mid",
    ]
    assert split.parse_listing(lines, None, 100_000).dirs == {"ab": 500, "cd": 20_000}
    assert split.parse_listing(lines, 1_000, None).dirs == {"ab": 5_000_000, "cd": 20_000}

    def job(*flags: str) -> Job:
        filters = tuple(flag for flag in flags if flag.startswith("--exclude"))
        others = tuple(flag for flag in flags if flag not in filters)
        command = RsyncArgv("rsync", "rsync://h/m/", "/d", ("-a", *others), filters)
        return Job(name="t", url="rsync://h/m/", dest=Path("/d"), command=command)

    listing = split.Listing({"ab": 500, "cd": 20_000}, 0, 1.0, listed_at=1000.0)
    split.keep_listings(tmp_path, {"t": (split.listing_key(job("--max-size=100000")), listing)})
    entry = split.cached_listings(tmp_path)["t"]
    same = split.cached_listing(entry, split.listing_key(job("--max-size=100000")), 1001.0)
    assert same is not None and same.dirs == listing.dirs
    for other in (job(), job("--max-size=200000"), job("--max-size=100000", "--exclude=x")):
        assert split.cached_listing(entry, split.listing_key(other), 1001.0) is None


def test_parse_listing_sums_bytes_per_top_level_directory():
    lines = [
        "drwxr-xr-x          4,096 2025/01/01 00:00:00 .",
        "-rw-r--r--             10 2025/01/01 00:00:00 README",
        "lrwxrwxrwx              2 2025/01/01 00:00:00 latest -> ab",
        "drwxr-xr-x          4,096 2025/01/01 00:00:00 ab",
        "-rw-r--r--          1,500 2025/01/01 00:00:00 ab/x y.cif",
        "drwxr-xr-x          4,096 2025/01/01 00:00:00 ab/deep",
        "-rw-r--r--            500 2025/01/01 00:00:00 ab/deep/z",
        "drwxr-xr-x          4,096 2025/01/01 00:00:00 empty",
        "drwxr-xr-x          4,096 2025/01/01 00:00:00 bad\\#012name",
        "-rw-r--r--              7 2025/01/01 00:00:00 bad\\#012name/f",
    ]
    listing = split.parse_listing(lines)
    assert listing.dirs == {"ab": 2000, "empty": 0}
    assert listing.other_bytes == 10 + 2 + 7  # files, links, a name no rule can carry


def _part(part: int, status: str, **fields) -> tuple[Job, SyncResult]:
    job = Job(
        name="t",
        url="rsync://h/m/",
        dest=Path("/d"),
        command=RsyncArgv("rsync", "", ""),
        part=part,
        parts=3,
    )
    result = SyncResult(name="t", url=job.url, dest="/d", status=status, attempts=1, **fields)
    return job, result


def test_merge_takes_the_worst_status_and_names_its_part():
    pairs = [
        _part(1, "success", exit_code=0),
        _part(2, "cancelled", exit_code=20, error="cancelled by SIGTERM"),
        _part(3, "failed", exit_code=23, error="rsync: send_files failed"),
    ]
    merged = merge_results([j for j, _ in pairs], [r for _, r in pairs])
    assert (merged.status, merged.exit_code) == ("failed", 23)
    assert merged.error == "part 3/3: rsync: send_files failed"
    pairs = [_part(1, "success", exit_code=0), _part(2, "cancelled", exit_code=20, error="x")]
    merged = merge_results([j for j, _ in pairs], [r for _, r in pairs])
    assert merged.status == "cancelled" and merged.error == "part 2/3: x"


# -- split = "auto": one packing of all the run's jobs -----------------------------------


def _streams(loads: dict[str, list[float]], weights: dict[str, float], k: int) -> list[float]:
    """What the scheduler's longest-first order puts on each of ``k`` slots: every job
    (a part, or a whole job that was not split) to the slot free first."""
    jobs = [w for name, w in weights.items() if name not in loads]
    jobs += [piece for pieces in loads.values() for piece in pieces]
    slots = [0.0] * k
    for size in sorted(jobs, reverse=True):
        slots[slots.index(min(slots))] += size
    return slots


def test_auto_fills_every_stream_evenly_with_few_rsyncs():
    """200 random runs, every target splittable: each ends within 10 % of the fair
    share, and most need no more rsyncs than McNaughton's wrap-around (targets +
    streams - 1); the fine-grained way is taken only where it ends sooner."""
    within_bound = 0
    for seed in range(200):
        rng = random.Random(seed)
        k = rng.randint(2, 8)
        weights = {f"t{i}": float(rng.randint(1, 1000)) for i in range(rng.randint(1, 9))}
        loads = split.auto_loads(weights, {name: 1000 for name in weights}, k)
        for name, pieces in loads.items():
            assert sum(pieces) == pytest.approx(weights[name]), f"{name}: bytes lost"
        fair = sum(weights.values()) / k
        slots = _streams(loads, weights, k)
        assert max(slots) <= fair * 1.10, (seed, slots, fair)
        parts = sum(len(pieces) for pieces in loads.values())
        within_bound += parts <= len(weights) + k - 1
    assert within_bound >= 180, f"only {within_bound}/200 runs kept to few rsyncs"


def test_auto_on_the_benchmark_shape_cuts_only_the_biggest():
    """50/20/15/10/5 % over 5 streams: the biggest target in parts that fill two streams
    and share a third; the rest whole; every stream a fifth of the bytes."""
    weights = {"mmcif": 50.0, "pdb": 20.0, "assemblies": 15.0, "sifts": 10.0, "emdb": 5.0}
    loads = split.auto_loads(weights, {name: 200 for name in weights}, 5)
    assert sorted(loads["mmcif"]) == [10.0, 20.0, 20.0]
    assert all(len(loads[name]) == 1 for name in ("pdb", "assemblies", "sifts", "emdb"))
    assert max(_streams(loads, weights, 5)) == pytest.approx(20.0)


def test_auto_never_splits_with_one_stream_nor_beyond_the_directories():
    weights = {"big": 90.0, "small": 10.0}
    assert split.auto_loads(weights, {"big": 50}, 1) == {"big": [90.0]}
    assert split.auto_loads(weights, {"big": 2}, 8) == {"big": [45.0, 45.0]}
    # a job that may not be split lies whole; the splittable one fills around it
    loads = split.auto_loads({"fixed": 60.0, "big": 40.0}, {"big": 50}, 2)
    assert loads == {"big": [40.0]}
    loads = split.auto_loads({"fixed": 30.0, "big": 70.0}, {"big": 50}, 2)
    assert sorted(loads["big"]) == [20.0, 50.0]


def test_parts_follow_wanted_uneven_loads():
    rng = random.Random(5)
    sizes = {f"{a}{b}": rng.randint(1_000, 300_000) for a in "0123456789" for b in "abcdefgh"}
    total = sum(sizes.values())
    groups = split.balance(sizes, [0.4, 0.4, 0.2])
    loads = sorted(sum(sizes[name] for name in group) for group in groups)
    for load, share in zip(loads, [0.2, 0.4, 0.4], strict=True):
        assert abs(load / total - share) < 0.01, (load / total, share)


def test_auto_splits_the_big_target_and_leaves_the_small_whole(tmp_path):
    """End to end against a daemon: a target of ~90 % of the bytes beside a small one,
    --parallel 3: the big one runs as parts, the small one as one rsync, and both trees
    equal their sources."""
    rng = random.Random(11)
    big, small = tmp_path / "src" / "big", tmp_path / "src" / "small"
    for index in range(30):
        (big / f"{index:02d}").mkdir(parents=True)
        (big / f"{index:02d}" / "f.cif").write_bytes(rng.randbytes(20_000 + 1_000 * index))
    for index in range(3):
        (small / f"s{index}").mkdir(parents=True)
        (small / f"s{index}" / "f.cif").write_bytes(rng.randbytes(15_000))
    mirror = LocalMirror(tmp_path / "src", tmp_path / "daemon")
    with mirror:
        config = write_config(
            tmp_path / "c.toml",
            tmp_path / "pdb",
            {
                name: {"url": mirror.url("ftp_data", f"{name}/"), "dest": name, "split": "auto"}
                for name in ("big", "small")
            },
        )
        result = run_cli(
            "--config", str(config), "-v", "sync", "--all", "--parallel", "3",
            "--format", "json",
        )  # fmt: skip
    assert result.code == 0, result.stderr
    started = [e for e in result.events if e["type"] == "sync_started"]
    assert {e.get("parts") for e in started if e["name"] == "big"} == {3}
    assert [e.get("parts") for e in started if e["name"] == "small"] == [None]
    assert "auto:" in result.stderr and "over 3 streams" in result.stderr
    for name, source in (("big", big), ("small", small)):
        assert tree(tmp_path / "pdb" / name) == tree(source), name


def test_a_refused_part_is_retried_alone_and_the_target_succeeds(served, tmp_path):
    """A daemon that takes two connections, four parts let through at once: the parts it
    refuses (exit 5, max connections) are retried on their own, and the target ends
    with the whole tree."""
    source, _mirror = served
    mirror, config = _two_connections(source, tmp_path)
    summary = tmp_path / "s.json"
    with mirror:
        result = run_cli(
            "--config", str(config), "sync", "t", "--parallel", "4", "--max-per-host", "4",
            "--retry", "20", "--retry-delay", "0.2", "--summary", str(summary),
        )  # fmt: skip
    assert result.code == 0, result.stderr
    (entry,) = orjson.loads(summary.read_bytes())["results"]
    attempts = sorted(part["attempts"] for part in entry["parts"])
    assert attempts[0] == 1 and attempts[-1] > 1, attempts
    assert entry["status"] == "success"
    assert tree(tmp_path / "pdb" / "t") == tree(source)


@pytest.mark.timeout(180)
def test_sigterm_to_the_whole_group_cancels_every_part(throttled_mirror, tmp_path):
    """Slurm's way: SIGTERM to every process at once while a split target's parts run.
    One result for the target, cancelled, each running part cancelled by SIGTERM, exit
    143, and no process of ours left in the whole process table. In a loop: races show
    one time in five."""
    import signal

    from conftest import LiveRun, wait_until_none_mention

    for round_number in range(3):
        work = tmp_path / f"round{round_number}"
        work.mkdir()
        config = write_config(
            work / "c.toml",
            work / "pdb",
            {"big": {"url": throttled_mirror.url("ftp_data", ""), "dest": "big", "split": 3}},
        )
        summary = work / "s.json"
        run = LiveRun(
            "--config", str(config), "sync", "big", "--parallel", "3", "--format", "json",
            "--summary", str(summary), new_session=True,
        )  # fmt: skip
        run.wait_for(lambda e: e["type"] == "progress" and e.get("parts") == 3)
        os.killpg(run.proc.pid, signal.SIGTERM)
        code, events, stderr = run.finish(timeout=30)
        assert code == 143, stderr
        assert "Traceback" not in stderr
        survivors = wait_until_none_mention(str(work))
        assert not survivors, f"round {round_number}: outlived the run: {survivors}"
        assert_valid_events(events)
        finished = [e for e in events if e["type"] == "sync_finished"]
        assert len(finished) == 1, "one sync_finished for the target, after its parts"
        (entry,) = orjson.loads(summary.read_bytes())["results"]
        assert entry["status"] == "cancelled" and "SIGTERM" in entry["error"]
        assert len(entry["parts"]) == 3
        for part in entry["parts"]:
            assert part["status"] in ("cancelled", "success"), part
            if part["status"] == "cancelled":
                assert "SIGTERM" in part["error"], part


def test_no_part_is_left_without_directories():
    """Uneven wanted loads can leave a group empty: it is left out rather than run as an
    rsync that copies nothing (found by fuzzing: 1.9 % of auto splits with top-level
    files). With one group left the target is not split at all."""
    g = 10**9
    loads = split.auto_loads({"t": 3.0 * g, "fixed": 2.0 * g}, {"t": 2}, 2)
    assert loads == {"t": [2.5 * g, 0.5 * g]}
    assert split.balance({"a": g, "b": g}, loads["t"], other_bytes=g) == [["a", "b"]]
    rng = random.Random(8)
    for _ in range(500):
        sizes = {f"d{i}": rng.randint(1, 10**6) for i in range(rng.randint(1, 12))}
        wanted = [rng.random() for _ in range(rng.randint(2, 6))]
        other = rng.choice([0, rng.randint(1, 10**6)])
        groups = split.balance(sizes, wanted, other)
        assert sorted(n for group in groups for n in group) == sorted(sizes)
        assert all(groups[:-1]), groups  # only the catch-all may hold no directory
        assert groups[-1] or other, groups
