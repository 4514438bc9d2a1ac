"""The weekly update's pure parts: id -> file rules, layout detection, list parsing,
the weeks a run applies, the config keys."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pdbsync.weekly import layouts, plan, status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from mini_pdb import WEEK_LAYOUTS, _entry_files


@pytest.mark.parametrize(
    ("name", "entry", "expected"),
    [
        ("mmcif", "1abc", "ab/1abc.cif.gz"),
        ("pdb", "1abc", "ab/pdb1abc.ent.gz"),
        ("xml", "1abc", "ab/1abc.xml.gz"),
        ("xml-noatom", "1abc", "ab/1abc-noatom.xml.gz"),
        ("xml-extatom", "1abc", "ab/1abc-extatom.xml.gz"),
        ("structure-factors", "1abc", "ab/r1abcsf.ent.gz"),
        ("nmr-data", "2xy9", "xy/2xy9_nmr-data.*"),
        ("assemblies", "1abc", "ab/1abc-assembly*.cif.gz"),
    ],
)
def test_entry_paths(name: str, entry: str, expected: str) -> None:
    assert layouts.LAYOUTS[name].entry_path(entry) == expected


def test_every_generated_file_is_owned_by_its_entry_in_its_layout() -> None:
    """The generator states the rules independently; each of its files must match."""
    assert set(WEEK_LAYOUTS) == set(layouts.LAYOUTS)
    for version in (1, 2, 3):
        for entry in ("1abc", "4hhb", "9zz0", "2xy9", "7b3q"):
            for relative in _entry_files(entry, version):
                matches = [
                    layout
                    for layout in layouts.LAYOUTS.values()
                    if relative.startswith(layout.path + "/")
                    and layout.owns(relative[len(layout.path) + 1 :], entry)
                ]
                assert len(matches) == 1, relative


def test_owns_refuses_another_entry_and_other_directories() -> None:
    assemblies = layouts.LAYOUTS["assemblies"]
    assert assemblies.owns("ab/1abc-assembly12.cif.gz", "1abc")
    assert not assemblies.owns("ab/1abd-assembly1.cif.gz", "1abc")
    assert not assemblies.owns("ab/x/1abc-assembly1.cif.gz", "1abc")
    assert not layouts.LAYOUTS["mmcif"].owns("ab/1abc.cif.gz.bak", "1abc")


@pytest.mark.parametrize(
    ("url", "layout", "root"),
    [
        (
            "rsync://rsync.rcsb.org/ftp_data/structures/divided/mmCIF/",
            "mmcif",
            "rsync://rsync.rcsb.org/ftp_data/",
        ),
        (
            "rsync://h:8730/pub/pdb/data/structures/divided/pdb",
            "pdb",
            "rsync://h:8730/pub/pdb/data/",
        ),
        ("host::ftp/data/assemblies/mmCIF/divided/", "assemblies", "host::ftp/data/"),
        ("rsync://h/m/structures/divided/XML-noatom/", "xml-noatom", "rsync://h/m/"),
        ("rsync://h/m/structures/divided/structure_factors/", "structure-factors", "rsync://h/m/"),
    ],
)
def test_detect_layout_and_data_root(url: str, layout: str, root: str) -> None:
    place = layouts.detect(url)
    assert place is not None
    assert (place.layout.name, place.data_root) == (layout, root)


def test_detect_unknown_path_and_explicit_layout() -> None:
    assert layouts.detect("rsync://h/m/sifts/xml/") is None
    place = layouts.detect("rsync://h/m/mine/cif/", "mmcif")
    assert place is not None and place.data_root == "rsync://h/m/"
    assert "known layouts: mmcif, pdb" in (layouts.layout_problem("cif") or "")


def test_parse_list_blank_lines_case_and_bad_ids() -> None:
    assert status.parse_list("\n1ABC\n  2xyz \n\n", "w/added.pdb") == ["1abc", "2xyz"]
    with pytest.raises(status.ListProblem, match=r"w/added.pdb line 2: 'abc' is not a PDB id"):
        status.parse_list("1abc\nabc\n", "w/added.pdb")
    with pytest.raises(status.ExtendedIds, match="pdb_00001abc"):
        status.parse_list("1abc\npdb_00001abc\n", "w/added.pdb")


def test_dated_folders_from_a_listing() -> None:
    listing = [
        "drwxr-xr-x          4,096 2026/12/05 06:32:54 .",
        "drwxr-xr-x          4,096 2026/12/05 06:32:54 20261118",
        "drwxr-xr-x          4,096 2026/12/05 06:32:54 20261111",
        "drwxr-xr-x          4,096 2026/12/05 06:32:54 latest",
        "-rw-r--r--             10 2026/12/05 06:32:54 20261125",
        "drwxr-xr-x          4,096 2026/12/05 06:32:54 20261399",
    ]
    assert status.dated_folders(listing) == ["20261111", "20261118"]


def test_weeks_to_apply_in_order_and_a_missing_week() -> None:
    folders = ["20261104", "20261111", "20261118", "20261125"]
    assert status.weeks_to_apply(folders, "20261111") == ["20261118", "20261125"]
    assert status.weeks_to_apply(folders, "20261125") == []
    with pytest.raises(status.ListProblem, match="week 20261118 is missing"):
        status.weeks_to_apply(["20261104", "20261111", "20261125"], "20261104")
    with pytest.raises(status.ListProblem, match="week 20261111 is missing"):
        status.weeks_to_apply(["20261118", "20261125"], "20261104")


def test_span_counts_and_entries_once() -> None:
    weeks = [
        status.Week("20261111", added=("1abc",), modified=("2xyz",)),
        status.Week("20261118", modified=("2xyz",), obsolete=("1abc",)),
    ]
    folded = status.span(weeks)
    assert folded.entries == ("1abc", "2xyz")
    assert dict(folded.counts) == {"added": 1, "modified": 2, "obsolete": 1}


NOW = datetime(2026, 12, 5, tzinfo=UTC)


def _inputs(state: dict | None, **kw) -> plan.Inputs:
    return plan.Inputs("mmcif", "k", "rsync://h/m/status/", 28 * 86400, state, **kw)


def _lister(folders):
    return lambda _rsync, _url: list(folders)


def _no_fetch(_rsync, _url, _names):
    raise AssertionError("a run that falls back before the lists must not read them")


@pytest.mark.parametrize(
    ("state", "kw", "reason"),
    [
        (None, {}, "no previous full sync"),
        (
            {"last_full": "2026-10-01T00:00:00Z", "last_week": "20261125"},
            {},
            "older than full_every",
        ),
        (
            {"last_full": "2026-12-01T00:00:00Z", "last_week": "20261125"},
            {"full_flag": True},
            "--full",
        ),
        ({"last_full": "2026-12-01T00:00:00Z", "last_week": None}, {}, "no applied week"),
        (
            {"last_full": "2026-12-01T00:00:00Z", "last_week": "20261125"},
            {"delete_with_backup": True},
            "delete and backup are both on",
        ),
    ],
)
def test_decide_fallbacks_before_the_lists(state, kw, reason) -> None:
    update = plan.decide(
        _inputs(state, **kw), "rsync", NOW, _lister(["20261125", "20261202"]), _no_fetch
    )
    assert update.mode == "full"
    assert reason in (update.reason or "")
    assert update.weeks == ("20261125", "20261202") and update.newest == "20261202"


def test_decide_weekly_and_list_problems() -> None:
    state = {"last_full": "2026-12-01T00:00:00Z", "last_week": "20261125"}

    def fetcher(_rsync, _url, names):
        return [status.Week(name, added=("1abc",)) for name in names]

    update = plan.decide(_inputs(state), "rsync", NOW, _lister(["20261125", "20261202"]), fetcher)
    assert (update.mode, update.weeks, update.newest, update.entries) == (
        "weekly",
        ("20261202",),
        "20261202",
        ("1abc",),
    )

    def failing(_rsync, _url):
        raise status.ListProblem("cannot list the status folders")

    update = plan.decide(_inputs(state), "rsync", NOW, failing, _no_fetch)
    assert update.mode == "full" and update.newest is None
    assert update.reason == "cannot list the status folders"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"layout": "cif"},
            "sync.custom.mm.layout: unknown layout 'cif'; known layouts: mmcif, pdb, xml, "
            "xml-noatom, xml-extatom, structure-factors, nmr-data, assemblies",
        ),
        (
            {"url": "rsync://127.0.0.1:9/m/sifts/xml/"},
            "sync.custom.mm: update_mode 'weekly' needs a layout, and the source does not end "
            "in a known data-type path; set layout to one of: mmcif,",
        ),
        ({"full_every": "4 weeks"}, "sync.custom.mm.full_every: expected a duration"),
        ({"update_mode": "update"}, "sync.custom.mm.update_mode: 'update' is not one of"),
    ],
)
def test_weekly_config_errors_are_one_line_exit_2(tmp_path: Path, fields, expected) -> None:
    from conftest import run_cli, write_config

    target = {
        "url": "rsync://127.0.0.1:9/m/structures/divided/mmCIF/",
        "dest": "mm",
        "update_mode": "weekly",
        **fields,
    }
    config = write_config(tmp_path / "c.toml", tmp_path / "pdb", {"mm": target})
    result = run_cli("--config", str(config), "sync", "--plan")
    assert result.code == 2
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_mirror_path_target_gets_its_layout_from_the_path(tmp_path: Path) -> None:
    from conftest import write_config

    from pdbsync.config.load import load_config, weekly_settings

    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "sf": {
                "mirror": "rcsb",
                "path": "structures/divided/structure_factors/",
                "dest": "sf",
                "update_mode": "weekly",
                "full_every": "14d",
            }
        },
    )
    loaded = load_config(config)
    settings = weekly_settings(loaded.targets["sf"])
    assert settings is not None
    assert settings.layout == "structure-factors"
    assert settings.status_url == settings.data_root + "status/"
    assert loaded.targets["sf"].url.startswith(settings.data_root)
    assert settings.full_every_s == 14 * 86400


def test_packed_sources_name_every_path_once_within_the_budget() -> None:
    from pdbsync.weekly.transfer import PACKED_ARG_BYTES, packed_sources

    url = "rsync://127.0.0.1:8730/pdb/structures/divided/mmCIF/"
    paths = [f"{n % 97:02d}/{n:04d}.cif.gz" for n in range(1000, 2000)]
    packed = packed_sources(url, paths)
    assert packed is not None and 1 < len(packed) < 100
    assert all(len(arg) <= PACKED_ARG_BYTES for arg in packed)
    assert all(
        arg.startswith("rsync://127.0.0.1:8730/pdb/structures/divided/mmCIF/./") for arg in packed
    )
    pieces = [piece for arg in packed for piece in arg.split(" ")]
    # after the first, each piece starts with the module: where the daemon splits
    assert all(
        piece.startswith("pdb/structures/divided/mmCIF/./")
        for arg in packed
        for piece in arg.split(" ")[1:]
    )
    assert [piece.rsplit("/./", 1)[1] for piece in pieces] == paths


def test_packed_sources_only_for_a_daemon_and_plain_paths() -> None:
    from pdbsync.weekly.transfer import packed_sources

    assert packed_sources("host::pdb/mmCIF/", ["ab/1abc.cif.gz"]) == [
        "host::pdb/mmCIF/./ab/1abc.cif.gz"
    ]
    assert packed_sources("/srv/mirror/mmCIF/", ["ab/1abc.cif.gz"]) is None  # no daemon
    assert packed_sources("host:/srv/mmCIF/", ["ab/1abc.cif.gz"]) is None  # a remote shell
    assert packed_sources("host::pdb/my mmCIF/", ["ab/1abc.cif.gz"]) is None  # a space
    assert packed_sources("host::pdb/mmCIF/", ["ab/1a c.cif.gz"]) is None
    assert packed_sources("rsync://host/", ["ab/1abc.cif.gz"]) is None  # no module
    assert (
        packed_sources("host::pdb/\u00e9t\u00e9/mmCIF/", ["ab/1abc.cif.gz"]) is None
    )  # bytes != chars


@pytest.mark.parametrize(
    ("flags", "version", "expected"),
    [
        (("-a",), (3, 4, 1), True),
        (("-a", "--chmod=D755,F644"), (3, 2, 4), True),
        (("-a",), (3, 2, 3), False),  # no --old-args: RSYNC_PROTECT_ARGS may be in force
        (("-a",), None, False),
        (("-avs",), (3, 4, 1), False),
        (("-a", "-s"), (3, 4, 1), False),
        (("-a", "--protect-args"), (3, 4, 1), False),
        (("-a", "--secluded-args"), (3, 4, 1), False),
        (("-a", "--backup-dir=old copies"), (3, 4, 1), False),
    ],
)
def test_may_pack(flags: tuple[str, ...], version, expected: bool) -> None:
    from pdbsync.weekly.transfer import may_pack

    assert may_pack(flags, version) is expected


def test_latency_flags_for_a_daemon_only() -> None:
    from pdbsync.weekly.fetch import latency_flags

    assert latency_flags("rsync://127.0.0.1:873/pdb/") == ("--sockopts=TCP_NODELAY",)
    assert latency_flags("host::pdb/") == ("--sockopts=TCP_NODELAY",)
    assert latency_flags("/srv/pdb/") == ()
    assert latency_flags("host::pdb/", ("--sockopts=SO_SNDBUF=65536",)) == ()
