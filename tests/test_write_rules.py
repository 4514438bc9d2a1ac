"""No path a run writes in lies in or around another target's tree (pdbsync.config.write_rules).

A matrix: each key of target ``a`` (its dest, partial dir, backup dir, and every output
flag) against target ``b``'s dest, inside it and holding it, spelled plainly, through a
symlink and with ``..``; through the command line and through the library. Each refusal
is one line naming both targets and keys, exit 2, and nothing written anywhere. Then
real syncs against the local rsync daemon: the loss that happened before, ``--plan``,
split targets, shards, and an absolute backup dir outside pdb_dir that now works.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from conftest import run_cli, write_config

import pdbsync
from pdbsync.errors import PdbSyncError

OUTPUT_FLAGS = ("--summary", "--events", "--junit", "--metrics", "--log-file")
TARGET_KEYS = ("dest", "partial_dir", "backup_dir")
#: how the path is written: as it is, through a symlink, with '..', and (partial and
#: backup dirs only) relative to the dest through a symlink inside the dest
SPELLINGS = ("plain", "symlink", "dotdot", "relative-link")


def _snapshot(root: Path) -> dict[str, object]:
    """Everything under ``root``: files with their bytes, directories, links' targets."""
    found: dict[str, object] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = ("link", os.readlink(path))
            elif path.is_dir():
                found[key] = "dir"
            else:
                found[key] = path.read_bytes()
    return found


class Scene:
    """Target ``a`` (the one run) and target ``b`` whose tree ``b/tree`` must survive."""

    def __init__(self, tmp_path: Path, url: str, b_exists: bool = True) -> None:
        self.tmp = tmp_path
        self.pdb = tmp_path / "pdb"
        self.pdb.mkdir()
        if b_exists:
            (self.pdb / "b" / "tree" / "keep").mkdir(parents=True)
            (self.pdb / "b" / "tree" / "keep" / "precious.txt").write_text("keep me")
        (tmp_path / "out").mkdir()  # where the harmless outputs of a case would go
        self.url = url
        self.a: dict[str, object] = {"url": url, "dest": "a"}
        self.flags: list[str] = []
        self.log_file = str(tmp_path / "out" / "log.jsonl")

    def place(self, relation: str, spelling: str, key: str) -> str:
        """The path for ``key`` that lies inside ``b``'s dest or holds it."""
        name = "x.out" if key.startswith("--") else "x"
        target = self.pdb / "b" / "tree" if relation == "inside" else self.pdb / "b"
        tail = [name] if relation == "inside" else []
        if spelling == "plain":
            return str(target.joinpath(*tail))
        if spelling == "dotdot":
            return str(self.pdb.joinpath("a", "..", *target.relative_to(self.pdb).parts, *tail))
        if spelling == "symlink":
            link = self.tmp / "link"
            link.symlink_to(target)
            return str(link.joinpath(*tail))
        # relative-link: a link inside a's own dest, and the value relative to the dest
        (self.pdb / "a").mkdir()
        (self.pdb / "a" / "link").symlink_to(
            Path("..").joinpath(*target.relative_to(self.pdb).parts)
        )
        return "/".join(["link", *tail])

    def set_key(self, key: str, relation: str, spelling: str) -> None:
        if key == "dest":
            if relation == "inside":
                written = {"plain": "b/tree/x", "symlink": "link/x"}[spelling]
                link_to = "b/tree"
            else:
                written = {"plain": "b", "symlink": "link"}[spelling]
                link_to = "b"
            if spelling == "symlink":
                (self.pdb / "link").symlink_to(link_to)
            self.a["dest"] = written
        elif key in ("partial_dir", "backup_dir"):
            self.a[f"options.{key}"] = self.place(relation, spelling, key)
            if key == "backup_dir":
                self.a["options.backup"] = True
        else:
            path = self.place(relation, spelling, key)
            if key == "--log-file":
                self.log_file = path
            else:
                self.flags += [key, path]
        if key != "--events":  # a harmless events file too: it must not be created
            self.flags += ["--events", str(self.tmp / "out" / "events.jsonl")]

    def config(self) -> Path:
        return write_config(
            self.tmp / "config.toml",
            self.pdb,
            {"a": self.a, "b": {"url": self.url, "dest": "b/tree"}},
        )


def _cases(keys, spellings=SPELLINGS):
    for key in keys:
        for relation in ("inside", "holds"):
            for spelling in spellings:
                if key == "dest" and spelling in ("dotdot", "relative-link"):
                    continue  # a dest with '..' is refused as written (config dest rules)
                if key in (*OUTPUT_FLAGS, "summary") and spelling == "relative-link":
                    continue  # an output is never relative to a dest
                yield pytest.param(key, relation, spelling, id=f"{key}-{relation}-{spelling}")


def _assert_one_line_naming_both(stderr: str, key: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("pdb-sync: error: "), line
    label = key.lstrip("-").replace("-", "_") if not key.startswith("--") else key
    assert label in line and "sync.custom.b.dest" in line, line
    if not key.startswith("--"):
        assert "sync.custom.a." in line or "target 'a'" in line, line
    return line


@pytest.mark.parametrize(("key", "relation", "spelling"), list(_cases(TARGET_KEYS + OUTPUT_FLAGS)))
def test_cli_refuses_each_key_in_or_around_another_targets_dest(
    mirror, tmp_path, key, relation, spelling
):
    # An output holding b's dest can only be a file where b's tree does not exist yet.
    scene = Scene(
        tmp_path,
        mirror.url("ftp_data", "sifts/"),
        b_exists=not (key.startswith("--") and relation == "holds"),
    )
    scene.set_key(key, relation, spelling)
    config = scene.config()
    before = _snapshot(tmp_path)
    result = run_cli(
        "--config", str(config), "--log-file", scene.log_file, "sync", "a", *scene.flags
    )
    assert result.code == 2, (result.code, result.stderr)
    _assert_one_line_naming_both(result.stderr, key)
    assert _snapshot(tmp_path) == before  # nothing written: no rsync, no output file


@pytest.mark.parametrize("run", ["sync", "plan"])
@pytest.mark.parametrize(
    ("key", "relation", "spelling"), list(_cases(("dest", "partial_dir", "backup_dir", "summary")))
)
def test_library_refuses_each_key_in_or_around_another_targets_dest(
    mirror, tmp_path, run, key, relation, spelling
):
    scene = Scene(
        tmp_path,
        mirror.url("ftp_data", "sifts/"),
        b_exists=not (key == "summary" and relation == "holds"),
    )
    summary = str(tmp_path / "out" / "summary.json")
    if key == "summary":
        summary = scene.place(relation, spelling, "--summary")
    else:
        scene.set_key(key, relation, spelling)
    config = scene.config()
    before = _snapshot(tmp_path)
    with pytest.raises(PdbSyncError) as caught:
        getattr(pdbsync, run)(config, ["a"], summary=summary, environ={})
    assert caught.value.exit_code == 2
    line = caught.value.message
    assert "\n" not in line and "sync.custom.b.dest" in line, line
    assert (key in line) if key != "dest" else ("sync.custom.a.dest" in line or "'a'" in line)
    assert _snapshot(tmp_path) == before


# -- real syncs --------------------------------------------------------------------------


def _synced_copy(mirror, tmp_path: Path) -> tuple[Path, Path, str]:
    """Target ``copy`` synced once: the tree another target must not touch."""
    pdb = tmp_path / "pdb"
    url = mirror.url("ftp_data", "structures/divided/mmCIF/")
    config = write_config(tmp_path / "c.toml", pdb, {"copy": {"url": url, "dest": "copy"}})
    result = run_cli("--config", str(config), "sync", "copy")
    assert result.code == 0, result.stderr
    return config, pdb, url


def _add_mmcif(config: Path, pdb: Path, url: str, **fields: object) -> None:
    """Target ``mmcif`` beside ``copy``, from the same source (``options.KEY`` fields)."""
    write_config(
        config,
        pdb,
        {"copy": {"url": url, "dest": "copy"}, "mmcif": {"url": url, "dest": "mmcif", **fields}},
    )


def _refused_naming(result, *parts: str) -> str:
    assert result.code == 2, (result.code, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def test_a_partial_dir_in_another_targets_tree_no_longer_consumes_its_files(mirror, tmp_path):
    # Before: exit 0, and rsync had used copy's file as a partial and removed it.
    config, pdb, url = _synced_copy(mirror, tmp_path)
    first = sorted((pdb / "copy").iterdir())[0]
    _add_mmcif(config, pdb, url, **{"options.partial_dir": str(first)})
    before = _snapshot(pdb / "copy")
    result = run_cli("--config", str(config), "sync", "mmcif")
    assert _snapshot(pdb / "copy") == before  # before the fix: a file of copy was gone
    _refused_naming(
        result,
        f"target 'mmcif': sync.custom.mmcif.options.partial_dir {str(first)!r}",
        "is inside the dest of target 'copy' (sync.custom.copy.dest 'copy')",
    )
    assert not (pdb / "mmcif").exists()


def test_a_backup_dir_in_another_targets_tree_no_longer_overwrites_its_files(mirror, tmp_path):
    # Before: exit 0, and every file of copy was replaced by mmcif's old local copy.
    config, pdb, url = _synced_copy(mirror, tmp_path)
    _add_mmcif(config, pdb, url)
    assert run_cli("--config", str(config), "sync", "mmcif").code == 0
    for path in (pdb / "mmcif").rglob("*.gz"):
        path.write_bytes(b"an edited local copy")
    link = tmp_path / "backups"
    link.symlink_to(pdb / "copy")  # through a symlink: judged where it resolves
    _add_mmcif(
        config,
        pdb,
        url,
        **{"options.backup": True, "options.backup_dir": str(link), "options.checksum": True},
    )
    before = _snapshot(pdb)
    result = run_cli("--config", str(config), "sync", "mmcif")
    assert _snapshot(pdb) == before  # before the fix: copy's files were the edited ones
    _refused_naming(
        result,
        "sync.custom.mmcif.options.backup_dir",
        f"(resolves to {str(pdb / 'copy')!r}) is the dest of target 'copy'",
    )


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(("--plan",), id="plan"),
        pytest.param(("--split", "2"), id="split"),
        pytest.param(("--shard", "1/2", "--all"), id="shard"),
        pytest.param(("--split", "2", "--plan"), id="split-plan"),
    ],
)
def test_plan_split_and_shard_runs_are_refused_the_same(mirror, tmp_path, flags):
    config, pdb, url = _synced_copy(mirror, tmp_path)
    partial = pdb / "copy" / "..." / ".." / "x"  # '..' resolved: inside copy
    _add_mmcif(config, pdb, url, split=2, **{"options.partial_dir": str(partial)})
    before = _snapshot(pdb)
    names = () if "--all" in flags else ("mmcif",)
    result = run_cli("--config", str(config), "sync", *names, *flags)
    _refused_naming(
        result,
        "sync.custom.mmcif.options.partial_dir",
        "is inside the dest of target 'copy' (sync.custom.copy.dest 'copy')",
    )
    assert _snapshot(pdb) == before


@pytest.mark.parametrize(
    "batch", [{"split": 2}, {"shard": "1/2"}, {"split": 2, "shard": "2/2"}], ids=str
)
def test_library_split_and_shard_runs_are_refused_the_same(mirror, tmp_path, batch):
    config, pdb, url = _synced_copy(mirror, tmp_path)
    _add_mmcif(config, pdb, url, **{"options.partial_dir": str(pdb / "copy")})
    before = _snapshot(tmp_path)
    with pytest.raises(pdbsync.ConfigError) as caught:
        pdbsync.sync(config, None, environ={}, **batch)
    assert "sync.custom.mmcif.options.partial_dir" in caught.value.message
    assert "is the dest of target 'copy' (sync.custom.copy.dest 'copy')" in caught.value.message
    assert _snapshot(tmp_path) == before


def test_an_absolute_backup_dir_outside_pdb_dir_collects_the_old_copies(mirror, tmp_path):
    # Before: refused ("not inside pdb_dir"), though the Rust tool documents exactly this.
    config, pdb, url = _synced_copy(mirror, tmp_path)
    _add_mmcif(config, pdb, url)
    assert run_cli("--config", str(config), "sync", "mmcif").code == 0
    edited = sorted((pdb / "mmcif").rglob("*.cif.gz"))[0]
    edited.write_bytes(b"an edited local copy")
    backups = tmp_path / "backup" / "pdb" / "structures"
    _add_mmcif(
        config,
        pdb,
        url,
        **{"options.backup": True, "options.backup_dir": str(backups), "options.checksum": True},
    )
    result = run_cli("--config", str(config), "sync", "mmcif")
    assert result.code == 0, result.stderr
    kept = backups / edited.relative_to(pdb / "mmcif")
    assert kept.read_bytes() == b"an edited local copy"
    assert edited.read_bytes() != b"an edited local copy"


def test_a_backup_dir_holding_pdb_dir_is_refused(mirror, tmp_path):
    config, pdb, url = _synced_copy(mirror, tmp_path)
    _add_mmcif(config, pdb, url, **{"options.backup": True, "options.backup_dir": str(tmp_path)})
    before = _snapshot(tmp_path)
    result = run_cli("--config", str(config), "sync", "mmcif")
    _refused_naming(result, "sync.custom.mmcif.options.backup_dir", "holds the dest of target")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("value", ["{dest}", "{dest}/.."])
def test_a_backup_dir_that_is_or_holds_its_own_dest_is_refused(mirror, tmp_path, value):
    pdb = tmp_path / "pdb"
    dest = pdb / "only"
    config = write_config(
        tmp_path / "c.toml",
        pdb,
        {
            "only": {
                "url": mirror.url("ftp_data", "sifts/"),
                "dest": "only",
                "options.backup": True,
                "options.backup_dir": value.format(dest=dest),
            }
        },
    )
    result = run_cli("--config", str(config), "sync", "only")
    _refused_naming(result, "sync.custom.only.options.backup_dir", "its own dest")
    assert not pdb.exists()


def test_config_validate_lists_the_same_problems(tmp_path):
    pdb = tmp_path / "pdb"
    config = write_config(
        tmp_path / "c.toml",
        pdb,
        {
            "a": {
                "url": "rsync://127.0.0.1/m/a/",
                "dest": "a",
                "options.partial_dir": str(pdb / "b" / "x"),
            },
            "b": {"url": "rsync://127.0.0.1/m/b/", "dest": "b"},
        },
    )
    result = run_cli("--config", str(config), "config", "validate")
    assert result.code == 2
    assert "target 'a': sync.custom.a.options.partial_dir" in result.stderr + result.text
    assert "the dest of target 'b' (sync.custom.b.dest 'b')" in result.stderr + result.text


# -- lock files -----------------------------------------------------------------------------


def test_a_dest_where_another_targets_lock_file_goes_is_refused(mirror, tmp_path):
    pdb = tmp_path / "pdb"
    url = mirror.url("ftp_data", "sifts/")
    config = write_config(
        tmp_path / "c.toml",
        pdb,
        {"a": {"url": url, "dest": "a"}, "b": {"url": url, "dest": "a.pdb-sync.lock/b"}},
    )
    result = run_cli("--config", str(config), "sync", "a")
    _refused_naming(result, "target 'a': lock file", "holds the dest of target 'b'")
    assert not pdb.exists()


def test_an_output_on_a_targets_lock_file_is_refused(mirror, tmp_path):
    pdb = tmp_path / "pdb"
    url = mirror.url("ftp_data", "sifts/")
    config = write_config(
        tmp_path / "c.toml", pdb, {"a": {"url": url, "dest": "a"}, "b": {"url": url, "dest": "b"}}
    )
    result = run_cli(
        "--config", str(config), "sync", "a", "--summary", str(pdb / "b.pdb-sync.lock")
    )
    _refused_naming(result, "--summary", "is the lock file of target 'b'")
    assert not pdb.exists()


# -- outputs against each other, the config and the state -------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [(first, second) for i, first in enumerate(OUTPUT_FLAGS) for second in OUTPUT_FLAGS[i + 1 :]],
)
def test_one_file_given_to_two_output_flags_is_refused_before_the_run(
    four_targets, tmp_path, first, second
):
    shared = tmp_path / "out" / "shared.json"
    args = {first: shared, second: shared}
    log = ["--log-file", str(shared)] if "--log-file" in args else []
    flags = [
        item for flag, path in args.items() if flag != "--log-file" for item in (flag, str(path))
    ]
    result = run_cli("--config", str(four_targets), *log, "sync", "--all", *flags)
    line = _refused_naming(result, "is the same file as", "give each its own path")
    assert first in line and second in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "pdb").exists()


def test_two_outputs_on_dev_null_are_fine(four_targets, tmp_path):
    result = run_cli(
        "--config",
        str(four_targets),
        "sync",
        "sifts",
        "--summary",
        "/dev/null",
        "--events",
        "/dev/null",
    )
    assert result.code == 0, result.stderr


def test_an_output_on_the_config_file_is_refused(four_targets, tmp_path):
    text = four_targets.read_text()
    result = run_cli("--config", str(four_targets), "sync", "--all", "--junit", str(four_targets))
    _refused_naming(result, f"--junit {str(four_targets)!r} is the config file")
    assert four_targets.read_text() == text and not (tmp_path / "pdb").exists()


@pytest.mark.parametrize("name", ["history.jsonl", "targets.json", "listings.json"])
def test_an_output_on_a_state_file_is_refused(four_targets, tmp_path, _own_state_dir, name):
    state_file = _own_state_dir / name
    result = run_cli("--config", str(four_targets), "sync", "--all", "--summary", str(state_file))
    _refused_naming(result, f"is pdb-sync's state file {name!r}")
    assert not state_file.exists() and not (tmp_path / "pdb").exists()


def test_the_library_refuses_a_summary_on_the_config_file(four_targets, tmp_path):
    text = four_targets.read_text()
    with pytest.raises(pdbsync.UsageError, match=r"summary .* is the config file"):
        pdbsync.sync(four_targets, summary=four_targets, environ={})
    assert four_targets.read_text() == text and not (tmp_path / "pdb").exists()


def test_the_state_files_listed_are_those_the_modules_write():
    from pdbsync.config import write_rules
    from pdbsync.mirrors import choice as mirror_choice
    from pdbsync.split import parts as split
    from pdbsync.store import history as state

    for name in (
        state.HISTORY_FILE,
        state.INDEX_FILE,
        state.LOCK_FILE,
        split.LISTING_FILE,
        mirror_choice.CACHE_FILE,
    ):
        assert name in write_rules.STATE_FILES


# -- the index, against a plain pairwise check -------------------------------------------------


def test_which_dest_holds_a_path_and_which_lies_in_it_match_a_pairwise_check():
    from pdbsync.config import write_rules

    rng = random.Random(7)
    names = ["a", "b", "ab", "a-b", "c"]

    def random_path(depth: int) -> str:
        return "/r/" + "/".join(rng.choice(names) for _ in range(depth))

    for _round in range(200):
        real = {f"t{i}": random_path(rng.randint(1, 3)) for i in range(rng.randint(1, 6))}
        dests = write_rules.Dests(real, dict.fromkeys(real, "x"))
        for _probe in range(10):
            path = random_path(rng.randint(1, 4))
            holders = [p for p in real.values() if path == p or path.startswith(p + "/")]
            inner = [p for p in real.values() if p.startswith(path + "/")]
            holder = dests.holding(path)
            assert (holder is None) == (not holders)
            if holder is not None:
                assert real[holder] == max(holders, key=len)
            below = dests.below(path)
            assert (below is None) == (not inner)
            if below is not None:
                assert real[below] in inner


# -- files written outside a sync: summary merge -o, every command's --log-file -----------------


def _two_dests(mirror, tmp_path: Path) -> tuple[Path, Path]:
    pdb = tmp_path / "pdb"
    url = mirror.url("ftp_data", "sifts/")
    config = write_config(
        tmp_path / "c.toml", pdb, {"a": {"url": url, "dest": "a"}, "b": {"url": url, "dest": "b"}}
    )
    (pdb / "b").mkdir(parents=True)
    return config, pdb


def test_summary_merge_refuses_an_output_in_a_dest_or_on_the_config(mirror, tmp_path):
    # Before: exit 0, the merge written into b's tree; `-o c.toml` replaced the config.
    config, pdb = _two_dests(mirror, tmp_path)
    shard = tmp_path / "s.json"
    assert run_cli("--config", str(config), "sync", "a", "--summary", str(shard)).code == 0
    before = _snapshot(tmp_path)
    inside = run_cli(
        "--config", str(config), "summary", "merge", str(shard), "-o", str(pdb / "b" / "m.json")
    )
    _refused_naming(inside, "-o ", "is inside the dest of target 'b' (sync.custom.b.dest 'b')")
    on_config = run_cli("--config", str(config), "summary", "merge", str(shard), "-o", str(config))
    _refused_naming(on_config, f"-o {str(config)!r} is the config file")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "command",
    [("sync", "--list"), ("status",), ("config", "validate"), ("slurm", "script"), ("history",)],
    ids=" ".join,
)
def test_every_commands_log_file_is_refused_in_a_dest(mirror, tmp_path, command):
    # Before: exit 0, and the log file was created inside b's tree.
    config, pdb = _two_dests(mirror, tmp_path)
    log = pdb / "b" / "run.log"
    before = _snapshot(tmp_path)
    result = run_cli("--config", str(config), "--log-file", str(log), *command)
    _refused_naming(result, "--log-file ", "is inside the dest of target 'b'")
    assert not log.exists() and _snapshot(tmp_path) == before


def test_without_a_config_a_log_file_on_a_state_file_is_still_refused(tmp_path, _own_state_dir):
    # Before: exit 0, and an empty history.jsonl was created (appended to once it exists).
    history = _own_state_dir / "history.jsonl"
    result = run_cli(
        "--log-file", str(history), "history", environ={"PDB_SYNC_CONFIG": str(tmp_path / "none")}
    )
    _refused_naming(result, "--log-file ", "is pdb-sync's state file 'history.jsonl'")
    assert not history.exists()


def test_summary_merge_refuses_one_file_for_o_and_log_file(mirror, tmp_path):
    # Before: exit 0; the log file was opened first, then the merge renamed over it.
    config, _pdb = _two_dests(mirror, tmp_path)
    shard, out = tmp_path / "s.json", tmp_path / "m.json"
    assert run_cli("--config", str(config), "sync", "a", "--summary", str(shard)).code == 0
    result = run_cli(
        "--config", str(config), "--log-file", str(out), "summary", "merge", str(shard),
        "-o", str(out),
    )  # fmt: skip
    _refused_naming(result, "is the same file as", "-o", "--log-file")
    assert not out.exists()


# -- partial and backup dirs against each other and against lock files ---------------------------

DIR_KEYS = ("partial_dir", "backup_dir")


def _dir_fields(key: str, value: str) -> dict[str, object]:
    switch = "partial" if key == "partial_dir" else "backup"
    return {f"options.{switch}": True, f"options.{key}": value}


def _dir_cases():
    for a_key in DIR_KEYS:
        for b_key in DIR_KEYS:
            for relation in ("equal", "inside", "holds"):
                yield pytest.param(a_key, b_key, relation, id=f"{a_key}-{b_key}-{relation}")


def _shared_scene(mirror, tmp_path: Path, a_key: str, b_key: str, relation: str) -> Path:
    """Targets ``a`` and ``b`` whose ``a_key`` and ``b_key`` meet as ``relation`` says."""
    pdb = tmp_path / "pdb"
    shared = pdb / "shared"
    a_value = {"equal": shared, "inside": shared / "a", "holds": shared}[relation]
    b_value = {"equal": shared, "inside": shared, "holds": shared / "b"}[relation]
    url = mirror.url("ftp_data", "sifts/")
    return write_config(
        tmp_path / "c.toml",
        pdb,
        {
            "a": {"url": url, "dest": "a", **_dir_fields(a_key, str(a_value))},
            "b": {"url": url, "dest": "b", **_dir_fields(b_key, str(b_value))},
        },
    )


def _names_both(line: str, a_key: str, b_key: str) -> None:
    assert f"target 'a': sync.custom.a.options.{a_key}" in line, line
    assert f"target 'b' (sync.custom.b.options.{b_key}" in line, line
    assert "\n" not in line


@pytest.mark.parametrize(("a_key", "b_key", "relation"), list(_dir_cases()))
def test_two_targets_partial_or_backup_dirs_that_meet_are_refused(
    mirror, tmp_path, a_key, b_key, relation
):
    # Before: accepted; one target's backups overwrote the other's, or its partials were
    # moved into the other's tree. b is not selected: a's run alone would do it.
    config = _shared_scene(mirror, tmp_path, a_key, b_key, relation)
    before = _snapshot(tmp_path)
    result = run_cli("--config", str(config), "sync", "a")
    line = _refused_naming(result)
    _names_both(line, a_key, b_key)
    for run in (pdbsync.sync, pdbsync.plan):
        with pytest.raises(pdbsync.ConfigError) as caught:
            run(config, ["a"], environ={})
        _names_both(caught.value.message, a_key, b_key)
    assert _snapshot(tmp_path) == before
    validate = run_cli("--config", str(config), "config", "validate")
    assert validate.code == 2
    said = (validate.stderr + validate.text).splitlines()
    problems = [line for line in said if "refused" in line]
    assert len(problems) == 1, problems  # the pair once, not once from each side


def test_a_shared_backup_dir_from_the_defaults_is_refused(mirror, tmp_path):
    url = mirror.url("ftp_data", "sifts/")
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"a": {"url": url, "dest": "a"}, "b": {"url": url, "dest": "b"}},
        f'\n[sync.defaults]\nbackup = true\nbackup_dir = "{tmp_path / "old"}"\n',
    )
    result = run_cli("--config", str(config), "sync", "--all")
    _refused_naming(result, "target 'a'", "is the backup dir of target 'b'", "backup_dir")
    assert not (tmp_path / "pdb").exists()


@pytest.mark.parametrize(
    ("partial", "backup", "relation"),
    [("p", "p", "is"), ("p", "p/old", "holds"), ("p/new", "p", "is inside")],
)
def test_a_targets_own_partial_and_backup_dirs_that_meet_are_refused(
    mirror, tmp_path, partial, backup, relation
):
    url = mirror.url("ftp_data", "sifts/")
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"a": {"url": url, "dest": "a", **_dir_fields("partial_dir", partial),
               **_dir_fields("backup_dir", backup)}},
    )  # fmt: skip
    result = run_cli("--config", str(config), "sync", "a")
    line = _refused_naming(result, "sync.custom.a.options.partial_dir", f" {relation} its own")
    assert "backup dir (sync.custom.a.options.backup_dir" in line
    assert not (tmp_path / "pdb").exists()
    with pytest.raises(pdbsync.ConfigError, match="its own backup dir"):
        pdbsync.plan(config, ["a"], environ={})


@pytest.mark.parametrize("key", DIR_KEYS)
@pytest.mark.parametrize("where", ["at", "inside"])
def test_a_partial_or_backup_dir_at_another_targets_lock_file_is_refused(
    mirror, tmp_path, key, where
):
    # Before: accepted (sync and config validate); rsync made a directory at b's lock
    # path, and every later run of b was refused.
    pdb = tmp_path / "pdb"
    lock = pdb / "b.pdb-sync.lock"
    value = lock if where == "at" else lock / "x"
    url = mirror.url("ftp_data", "sifts/")
    config = write_config(
        tmp_path / "c.toml",
        pdb,
        {
            "a": {"url": url, "dest": "a", **_dir_fields(key, str(value))},
            "b": {"url": url, "dest": "b"},
        },
    )
    relation = "is" if where == "at" else "is inside"
    expected = f"{relation} the lock file of target 'b' ({str(lock)!r})"
    result = run_cli("--config", str(config), "sync", "a")
    _refused_naming(result, f"sync.custom.a.options.{key}", expected)
    with pytest.raises(pdbsync.ConfigError, match="the lock file of target 'b'"):
        pdbsync.sync(config, ["a"], environ={})
    validate = run_cli("--config", str(config), "config", "validate")
    assert validate.code == 2 and expected in validate.stderr + validate.text
    assert not pdb.exists()
