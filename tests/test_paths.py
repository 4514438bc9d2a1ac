"""Every byte rsync writes or deletes stays inside pdb_dir, symlinks or not.

The pure rules (pdbsync.paths) are checked against os.path.realpath and a naive
pairwise overlap check; the rest runs real syncs against the local rsync daemon with
symlinks in and around the mirror root.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from conftest import run_cli, write_config

from pdbsync import paths
from pdbsync.config.load import load_config
from pdbsync.messages import RsyncStarted
from pdbsync.run.jobs import plan_jobs
from pdbsync.run.worker import execute

# -- pure rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [("a", ("a",)), ("./a//b/", ("a", "b")), ("a/./b/.", ("a", "b")), ("./", ())],
)
def test_parts_are_what_rsync_sees(written, expected):
    assert paths.parts(written) == expected


@pytest.mark.parametrize("code", [*range(0x20), 0x7F])
def test_every_c0_control_and_del_is_a_control_char(code):
    assert paths.has_control_chars(f"a{chr(code)}b")


@pytest.mark.parametrize("text", ["mmCIF", "a b", "é/ü", "x~y", "\x80"])
def test_printable_text_has_no_control_chars(text):
    assert not paths.has_control_chars(text)


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("/srv/pdb/a/b", "/srv/pdb", ("a", "b")),
        ("/srv/pdb", "/srv/pdb", ()),
        ("/srv/pdbx/a", "/srv/pdb", None),  # a sibling with a common prefix is outside
        ("/srv", "/srv/pdb", None),
        ("/elsewhere", "/srv/pdb", None),
        ("/a", "/", ("a",)),
    ],
)
def test_below_compares_whole_components(path, root, expected):
    assert paths.below(path, root) == expected


def _naive_overlaps(entries):
    """Every pair (i, j) with j < i whose entries are equal or one inside the other."""
    return {
        (i, j)
        for i, a in enumerate(entries)
        for j, b in enumerate(entries[:i])
        if a[: len(b)] == b or b[: len(a)] == a
    }


@pytest.mark.parametrize("seed", range(20))
def test_overlaps_finds_every_overlapping_entry_like_the_pairwise_check(seed):
    rng = random.Random(seed)
    names = ["a", "b", "ab", "a.b"]
    entries = [
        tuple(rng.choice(names) for _ in range(rng.randint(1, 3)))
        for _ in range(rng.randint(2, 40))
    ]
    pairs = _naive_overlaps(entries)
    found = paths.overlaps(entries)
    for index, other, relation in found:
        a, b = entries[index], entries[other]
        if relation == paths.SAME:
            assert a == b and other < index
        else:
            assert a != b and a[: len(b)] == b  # index is the inner one
    involved = {i for pair in pairs for i in pair}
    reported = {index for index, _, _ in found} | {other for _, other, _ in found}
    assert reported == involved
    # each target appears at most once as the one reported
    assert len({index for index, _, _ in found}) == len(found)
    # and every target inside (or equal to an earlier) one is reported
    inner = {
        i
        for i, a in enumerate(entries)
        for j, b in enumerate(entries)
        if i != j and ((a == b and j < i) or (a != b and a[: len(b)] == b))
    }
    assert {index for index, _, _ in found} == inner
    keys = [(max(i, j), min(i, j)) for i, j, _ in found]
    assert keys == sorted(keys)


def test_overlaps_names_the_nearest_enclosing_entry():
    entries = [("s",), ("s", "d"), ("s", "d", "m"), ("s", "d", "m")]
    assert paths.overlaps(entries) == [
        (1, 0, paths.INSIDE),
        (2, 1, paths.INSIDE),
        (3, 2, paths.SAME),
    ]


class _Counted(str):
    """A path component that counts the comparisons made with it (the work overlaps does)."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Counted.compared += 1
        return str.__eq__(self, other)

    def __lt__(self, other: str) -> bool:
        _Counted.compared += 1
        return str.__lt__(self, other)

    __hash__ = str.__hash__


def _comparisons(count: int) -> int:
    """Comparisons overlaps makes over ``count`` dests in 50 groups, plus one inside."""
    entries = [tuple(map(_Counted, ("group", f"{i % 50}", f"d{i:05d}"))) for i in range(count)]
    entries.append(tuple(map(_Counted, ("group", "7", "d00007", "inner"))))
    _Counted.compared = 0
    assert paths.overlaps(entries) == [(count, 7, paths.INSIDE)]
    return _Counted.compared


def test_overlaps_work_grows_as_n_log_n_not_n_squared():
    """20,000 targets took 11 minutes when the check was pairwise (issue 8). Four times
    the dests may cost about four times the comparisons (times log n), never sixteen;
    the time 20,000 take is a row of scripts/bench.py (config validate)."""
    small, large = _comparisons(500), _comparisons(2_000)
    assert large < 6 * small, (small, large)
    assert large < 2_000 * 100, large  # a sort's worth per entry, not a scan of the others


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """pdb/ with real dirs, links inside, out, dangling, chained and up; and outside/."""
    root, outside = tmp_path / "pdb", tmp_path / "outside"
    (root / "real" / "sub").mkdir(parents=True)
    (root / "file").write_text("x")
    outside.mkdir()
    (root / "in").symlink_to("real")
    (root / "out").symlink_to(outside)
    (root / "dangling").symlink_to(tmp_path / "nowhere" / "deep")
    (root / "dangling_in").symlink_to("not-yet")
    (root / "chain").symlink_to("in/sub")
    (root / "up").symlink_to("..")
    (root / "real" / "back").symlink_to("../out")
    return root, outside


@pytest.mark.parametrize(
    "relative",
    [
        "real",
        "real/sub/new/deeper",
        "in/sub",
        "out/x",
        "dangling/x",
        "dangling_in/x",
        "chain/y",
        "up/outside",
        "real/back/z",
        "file/x",
        "missing/a/b",
    ],
)
def test_resolver_agrees_with_realpath(tmp_path, relative):
    root, _outside = _tree(tmp_path)
    resolver = paths.Resolver(root)
    resolver.resolve(("real", "sub"))  # parents already known must not change the answer
    assert resolver.resolve(paths.parts(relative)) == os.path.realpath(root / relative)


def test_moved_says_where_a_swapped_path_now_goes(tmp_path):
    root, outside = _tree(tmp_path)
    dest = root / "x"
    planned = paths.real(dest)
    assert paths.moved(dest, planned) is None
    dest.symlink_to(outside)
    assert paths.moved(dest, planned) == outside


# -- real syncs -----------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _refused(config: Path, *args: str, command: str = "sync") -> str:
    result = run_cli("--config", str(config), command, *args)
    assert result.code == 2, (result.code, result.stderr, result.text)
    assert result.stdout == b""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_dest_linked_outside_pdb_dir_is_refused_and_nothing_is_deleted(mirror, tmp_path):
    pdb, elsewhere = tmp_path / "pdb", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    pdb.mkdir()
    (pdb / "link").symlink_to(elsewhere)
    config = write_config(
        tmp_path / "c.toml",
        pdb,
        {"link": {"url": mirror.url("ftp_data", "sifts/"), "dest": "link"}},
        extra="[sync.defaults]\ndelete = true\n",
    )
    for args in (("link",), ("link", "--plan"), ("link", "--dry-run"), ("--all", "--delete")):
        line = _refused(config, *args)
        assert "sync.custom.link.dest" in line
        assert f"{pdb / 'link'}" in line and f"resolves to '{elsewhere}'" in line
        assert "outside pdb_dir" in line
    result = run_cli("--config", str(config), "config", "validate")
    assert result.code == 2 and "outside pdb_dir" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert _snapshot(elsewhere) == {"precious.txt": b"keep me"}


def test_two_dests_made_one_by_a_link_are_refused_and_keep_their_files(mirror, archive, tmp_path):
    pdb = tmp_path / "pdb"
    (pdb / "x").mkdir(parents=True)
    (pdb / "y").symlink_to("x")
    for number in range(5):
        (pdb / "x" / f"y-file-{number}.txt").write_text(f"y's own file {number}\n")
    before = _snapshot(pdb / "x")
    config = write_config(
        tmp_path / "c.toml",
        pdb,
        {
            "x": {"url": mirror.url("ftp_data", "sifts/"), "dest": "x"},
            "y": {"url": mirror.url("ftp_data", "emdb/"), "dest": "y"},
        },
    )
    # syncing x alone is refused too: its delete would remove y's files
    line = _refused(config, "x", "--delete")
    assert line.endswith(
        "sync.custom.y.dest: 'y' (resolves to 'x') is the same directory as "
        "sync.custom.x.dest 'x'; targets must not share a tree (one could delete the "
        "other's files)"
    )
    _refused(config, "--all", "--plan")
    result = run_cli("--config", str(config), "config", "validate")
    assert result.code == 2 and "'y' (resolves to 'x') is the same directory" in result.stderr
    assert _snapshot(pdb / "x") == before


def test_a_dangling_link_to_outside_is_refused_and_creates_nothing(mirror, tmp_path):
    pdb, nowhere = tmp_path / "pdb", tmp_path / "nowhere"
    pdb.mkdir()
    (pdb / "d").symlink_to(nowhere / "deep")
    config = write_config(
        tmp_path / "c.toml", pdb, {"d": {"url": mirror.url("ftp_data", "sifts/"), "dest": "d/sub"}}
    )
    line = _refused(config, "d")
    assert f"resolves to '{nowhere / 'deep' / 'sub'}'" in line and "outside pdb_dir" in line
    assert not nowhere.exists()


def test_a_link_back_to_pdb_dir_itself_is_refused(mirror, tmp_path):
    pdb = tmp_path / "pdb"
    pdb.mkdir()
    (pdb / "all").symlink_to(".")
    config = write_config(
        tmp_path / "c.toml", pdb, {"all": {"url": mirror.url("ftp_data", "sifts/"), "dest": "all"}}
    )
    assert "pdb_dir itself" in _refused(config, "all")


def test_pdb_dir_itself_may_be_a_symlink(mirror, archive, tmp_path):
    big = tmp_path / "mnt" / "big" / "pdb"
    big.mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pdb").symlink_to(big)
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "data" / "pdb",
        {"sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"}},
    )
    assert run_cli("--config", str(config), "config", "validate").code == 0
    result = run_cli("--config", str(config), "sync", "sifts", "--delete")
    assert result.code == 0, result.stderr
    assert _snapshot(big / "sifts") == _snapshot(archive / "sifts")


def test_a_link_that_stays_inside_and_apart_is_allowed(mirror, archive, tmp_path):
    pdb = tmp_path / "pdb"
    (pdb / "store" / "v2").mkdir(parents=True)
    (pdb / "current").symlink_to("store/v2")
    config = write_config(
        tmp_path / "c.toml",
        pdb,
        {
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "current/sifts"},
            "emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "store/emdb"},
        },
    )
    assert run_cli("--config", str(config), "config", "validate").code == 0
    result = run_cli("--config", str(config), "sync", "--all", "--delete")
    assert result.code == 0, result.stderr
    assert _snapshot(pdb / "store" / "v2" / "sifts") == _snapshot(archive / "sifts")
    assert _snapshot(pdb / "store" / "emdb") == _snapshot(archive / "emdb")


def _planned_job(mirror, tmp_path: Path, dest: str = "sifts"):
    pdb = tmp_path / "pdb"
    pdb.mkdir(exist_ok=True)
    config = write_config(
        tmp_path / "c.toml",
        pdb,
        {"sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": dest}},
        extra="[sync.defaults]\ndelete = true\n",
    )
    (job,) = plan_jobs(load_config(config), ["sifts"], pdb)
    return job


def _outside_with_a_precious_file(tmp_path: Path) -> Path:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    return outside


def test_a_dest_swapped_for_a_link_after_planning_fails_without_starting_rsync(mirror, tmp_path):
    job = _planned_job(mirror, tmp_path)
    outside = _outside_with_a_precious_file(tmp_path)
    job.dest.symlink_to(outside)  # after planning, before the worker runs it
    sent = []
    result = execute(job, sent.append)
    assert result.status == "failed"
    assert result.error is not None and f"now resolves to '{outside}'" in result.error
    assert "refusing to start rsync" in result.error
    assert [m for m in sent if isinstance(m, RsyncStarted)] == []
    assert _snapshot(outside) == {"precious.txt": b"keep me"}


def test_a_link_swapped_in_while_the_dest_is_created_stops_rsync(mirror, tmp_path, monkeypatch):
    job = _planned_job(mirror, tmp_path, dest="a/sifts")
    outside = _outside_with_a_precious_file(tmp_path)
    real_mkdir = Path.mkdir

    def mkdir_then_swap(self, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)
        # the race: once the dest is made, 'a' becomes a link (Path.mkdir recurses: once)
        if self == job.resolved_dest and not (job.root / "a.old").exists():
            (job.root / "a").rename(job.root / "a.old")
            (job.root / "a").symlink_to(outside)

    monkeypatch.setattr(Path, "mkdir", mkdir_then_swap)
    sent = []
    result = execute(job, sent.append)
    assert result.status == "failed" and "now resolves to" in (result.error or "")
    assert [m for m in sent if isinstance(m, RsyncStarted)] == []
    assert _snapshot(outside) == {"precious.txt": b"keep me"}


def test_an_unchanged_planned_job_runs(mirror, archive, tmp_path):
    job = _planned_job(mirror, tmp_path)
    result = execute(job, [].append)
    assert result.status == "success", result.error
    assert _snapshot(job.dest) == _snapshot(archive / "sifts")


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--partial-dir", "{outside}", "not inside pdb_dir"),
        ("--partial-dir", "{pdb}/out/old", "not inside pdb_dir"),  # inside, through a link
        ("--backup-dir", "../other", "contains '..'"),
        ("--partial-dir", "a/../../x", "contains '..'"),
    ],
)
def test_backup_and_partial_dirs_must_stay_inside(mirror, tmp_path, flag, value, expected):
    pdb = tmp_path / "pdb"
    outside = _outside_with_a_precious_file(tmp_path)
    pdb.mkdir()
    (pdb / "out").symlink_to(outside)
    config = write_config(
        tmp_path / "c.toml", pdb, {"s": {"url": mirror.url("ftp_data", "sifts/"), "dest": "s"}}
    )
    given = value.format(outside=outside, pdb=pdb)
    line = _refused(config, "s", "--backup", flag, given)
    assert flag in line and expected in line
    assert not (pdb / "s").exists()
    assert _snapshot(outside) == {"precious.txt": b"keep me"}
