"""rsync options: the merge of the six layers, the flags they make, sizes, validation."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from conftest import run_cli

from pdbsync import contracts
from pdbsync.config.load import load_config, target_options
from pdbsync.config.options import (
    LAYERS,
    MAX_RETRY_DELAY,
    OPTIONS,
    PRESETS,
    RSYNC_KEYS,
    SPECS,
    RsyncOptions,
    build_flags,
    check_value,
    cli_layer,
    parse_size,
    resolve,
)
from pdbsync.errors import ConfigError
from pdbsync.run.jobs import plan_jobs

URL = "rsync://127.0.0.1:873/ftp_data/sifts/"

# -- the merge table --------------------------------------------------------------------

#: Every layer that can set ``compress``; the preset can only set it to true ("safe").
SETTABLE = [layer for layer in LAYERS if layer != "built-in"]


def _resolve_with(layer_values: dict[str, bool], tmp_path: Path) -> RsyncOptions:
    """Resolve one target where each named layer sets ``compress`` to the given value."""
    settings: dict = {}
    defaults: dict = {}
    cli = None
    for layer, value in layer_values.items():
        if layer == "cli":
            cli = cli_layer({"compress": value}, tmp_path)
        elif layer == "target":
            settings["options"] = {"compress": value}
        elif layer == "preset":
            assert value is True
            settings["preset"] = "safe"
        elif layer == "defaults":
            defaults["compress"] = value
        elif layer == "legacy":
            settings["rsync_compress"] = value
    return resolve("t", settings, defaults, tmp_path, cli)


@pytest.mark.parametrize(
    ("higher", "lower"),
    list(itertools.combinations(LAYERS, 2)),
)
def test_higher_layer_beats_every_lower_layer(higher, lower, tmp_path):
    # The preset can only say true and the built-in default is false, so the winning
    # value is chosen to differ from what the lower layer says.
    winner = lower != "preset"
    values = {higher: winner}
    if lower != "built-in":
        values[lower] = not winner
    options = _resolve_with(values, tmp_path)
    assert options.compress is winner
    assert options.source("compress").split()[0] == higher


@pytest.mark.parametrize("layer", SETTABLE)
def test_a_layer_alone_decides_and_is_named(layer, tmp_path):
    options = _resolve_with({layer: True}, tmp_path)
    assert options.compress is True
    assert options.source("compress").split()[0] == layer


def test_nothing_set_means_built_in_defaults_all_off_and_plain_rsync(tmp_path):
    # --partial-dir makes rsync look for a partial file beside every file of a re-sync
    # (issue 25): a target with no options set runs rsync as plain as `rsync -a`.
    options = resolve("t", {}, {}, tmp_path)
    assert options == RsyncOptions()
    assert all(options.source(key) == "built-in" for key in SPECS)
    on = {key for key, value in options.values().items() if value not in (False, None, [], 0)}
    assert on == {"partial_dir"}  # where partial files would go, once partial is on
    assert options.partial is False and options.partial_dir == ".rsync-partial"
    assert build_flags(options) == ["-a"]


def test_partial_on_anywhere_gives_the_default_partial_dir_never_bare_partial(tmp_path):
    # bare --partial would leave a cut-off file under its final name
    for settings, defaults in (
        ({"options": {"partial": True}}, {}),
        ({}, {"partial": True}),
        ({"rsync_partial": True}, {}),
        ({"preset": "safe"}, {}),
        ({"preset": "fast"}, {}),
        ({"preset": "conservative"}, {}),
    ):
        options = resolve("t", settings, defaults, tmp_path)
        flags = build_flags(options)
        assert "--partial-dir=.rsync-partial" in flags, (settings, defaults)
        assert "--partial" not in flags
    assert "--partial-dir" not in " ".join(
        build_flags(resolve("t", {"preset": "minimal"}, {}, tmp_path))
    )


def test_a_partial_dir_set_alone_still_turns_partial_on(tmp_path):
    # configs written when partial was on by default keep their meaning
    for settings, defaults, where in (
        ({"options": {"partial_dir": ".p"}}, {}, "sync.custom.t.options.partial_dir"),
        ({}, {"partial_dir": ".p"}, "sync.defaults.partial_dir"),
        ({"rsync_partial_dir": ".p"}, {}, "sync.custom.t.rsync_partial_dir"),
    ):
        options = resolve("t", settings, defaults, tmp_path)
        assert options.partial is True
        assert build_flags(options) == ["-a", "--partial-dir=.p"]
        assert options.where["partial"] == f"implied by {where}"
    from_cli = resolve("t", {}, {}, tmp_path, cli_layer({"partial_dir": ".q"}, tmp_path))
    assert build_flags(from_cli) == ["-a", "--partial-dir=.q"]
    assert from_cli.source("partial") == "cli"


def test_a_higher_layer_turning_partial_off_leaves_a_lower_partial_dir_unused(tmp_path):
    target = {"options": {"partial_dir": ".p"}}
    off = resolve("t", target, {}, tmp_path, cli_layer({"partial": False}, tmp_path))
    assert build_flags(off) == ["-a"]
    from_target = resolve("t", {"options": {"partial": False}}, {"partial_dir": ".p"}, tmp_path)
    assert build_flags(from_target) == ["-a"]
    with pytest.raises(ConfigError, match="partial_dir needs partial = true"):
        resolve(
            "t",
            {"options": {"partial": False}},
            {},
            tmp_path,
            cli_layer({"partial_dir": "x"}, tmp_path),
        )


def test_no_partial_passes_no_partial_flag_at_all(tmp_path):
    options = resolve("t", {"options": {"partial": False}}, {}, tmp_path)
    assert options.partial is False
    assert build_flags(options) == ["-a"]
    from_cli = resolve("t", {}, {}, tmp_path, cli_layer({"partial": False}, tmp_path))
    assert build_flags(from_cli) == ["-a"]


def test_value_options_and_lists_follow_the_same_order(tmp_path):
    settings = {
        "options": {"exclude": ["*.tmp"]},
        "rsync_timeout": 5,
        "rsync_exclude": ["old"],
        "rsync_bwlimit": 10,
    }
    defaults = {"timeout": 30, "exclude": ["x", "y"]}
    options = resolve("t", settings, defaults, tmp_path, cli_layer({"bwlimit": 99}, tmp_path))
    assert options.timeout == 30 and options.source("timeout") == "defaults"
    assert options.exclude == ("*.tmp",) and options.source("exclude") == "target"
    assert options.bwlimit == 99 and options.source("bwlimit") == "cli"
    assert options.where["timeout"] == "sync.defaults.timeout"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_sets_exactly_its_keys(preset, tmp_path):
    options = resolve("t", {"preset": preset}, {}, tmp_path)
    for key in RSYNC_KEYS:
        expected = PRESETS[preset].get(key, getattr(RsyncOptions(), key))
        assert getattr(options, key) == expected, key
    assert {k for k in SPECS if options.source(k) == f"preset {preset}"} == set(PRESETS[preset])


def test_cli_verbose_turns_a_preset_quiet_off(tmp_path):
    options = resolve("t", {"preset": "fast"}, {}, tmp_path, cli_layer({"verbose": True}, tmp_path))
    assert options.verbose and not options.quiet
    assert options.where["quiet"] == "implied by --rsync-verbose"


def test_retry_settings_reach_the_job(tmp_path):
    from pdbsync.run.jobs import RetryPolicy

    config = tmp_path / "c.toml"
    config.write_text(
        f'[sync.defaults]\nretry = 3\nretry_delay = 0.5\n[sync.custom.t]\nurl = "{URL}"\n'
        'dest = "t"\n[sync.custom.u]\nurl = "' + URL + '"\ndest = "u"\n'
        "[sync.custom.u.options]\nretry = 0\n"
    )
    jobs = plan_jobs(load_config(config), ["t", "u"], tmp_path)
    assert jobs[0].retry == RetryPolicy(retries=3, delay=0.5)
    assert jobs[1].retry == RetryPolicy(retries=0, delay=0.5)


# -- flags ------------------------------------------------------------------------------


def test_flag_builder_gives_the_exact_flags_in_order(tmp_path):
    patterns = tmp_path / "skip.txt"
    patterns.write_text("*.bak\n")
    options = resolve(
        "t",
        {
            "options": {
                "delete": True,
                "checksum": True,
                "itemize_changes": True,
                "partial": True,
                "partial_dir": ".part",
                "max_size": "5G",
                "min_size": "500K",
                "timeout": 60,
                "contimeout": 10,
                "bwlimit": 2000,
                "modify_window": 1,
                "chmod": "Du+rwx,Fgo-w",
                "exclude": ["*.tmp", "obsolete/"],
                "include": ["*.cif.gz", "*/"],
                "exclude_from": "skip.txt",
            }
        },
        {"compress": True},
        tmp_path,
    )
    assert build_flags(options) == [
        "-a",
        "--delete",
        "-z",
        "-c",
        "--itemize-changes",
        "--modify-window=1",
        "--partial-dir=.part",
        f"--max-size={5 * 1024**3}",
        "--min-size=512000",
        "--timeout=60",
        "--contimeout=10",
        "--bwlimit=2000",
        "--chmod=Du+rwx,Fgo-w",
        "--include=*.cif.gz",
        "--include=*/",
        "--exclude=*.tmp",
        "--exclude=obsolete/",
        f"--exclude-from={patterns}",
    ]


def test_every_boolean_has_its_rsync_flag(tmp_path):
    for spec in OPTIONS:
        if spec.kind != "bool":
            continue
        # partial off and no partial_dir: each boolean alone
        options = RsyncOptions(**{"partial": False, "partial_dir": None, spec.key: True})
        if spec.key == "quiet":  # done by pdb-sync: rsync's -q would hide --stats
            assert build_flags(options) == ["-a"]
        else:
            assert build_flags(options) == ["-a", spec.rsync]


def test_job_argv_is_the_exact_command(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        f'[sync.custom.t]\nurl = "{URL}"\ndest = "t"\npreset = "fast"\n'
        '[sync.custom.t.options]\nexclude = ["*.tmp"]\n'
    )
    (job,) = plan_jobs(load_config(config), ["t"], tmp_path / "pdb", rsync="/bin/rsync")
    assert job.argv == (
        "/bin/rsync",
        "-a",
        "--delete",
        "-z",
        "--partial-dir=.rsync-partial",
        "--exclude=*.tmp",
        "--info=progress2",
        "--stats",
        "--",
        URL,
        f"{tmp_path}/pdb/t/",
    )


# -- sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500K", 500 * 1024),
        ("10M", 10 * 1024**2),
        ("5G", 5 * 1024**3),
        ("5GB", 5 * 1000**3),
        ("5GiB", 5 * 1024**3),
        ("1.5m", int(1.5 * 1024**2)),
        ("100", 100),
        ("100B", 100),
        (" 2 T ", 2 * 1024**4),
        (4096, 4096),
    ],
)
def test_sizes_parse_like_rsync(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "10Q", "M", "-5M", "5 G B", "1e3", True, -1, 1.5])
def test_malformed_sizes_are_rejected(text):
    with pytest.raises(ValueError):
        parse_size(text)


# -- validation: one line, exit 2, naming target and key --------------------------------


def _config(tmp_path: Path, target_extra: str = "", top: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\npdb_dir = "{tmp_path}/pdb"\n{top}\n'
        f'[sync.custom.t]\nurl = "{URL}"\ndest = "t"\n{target_extra}\n'
    )
    return path


def _fails(config: Path, *extra: str) -> str:
    result = run_cli("--config", str(config), "sync", "t", "--dry-run", *extra)
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert result.stdout == b""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("target_extra", "top", "expected"),
    [
        (
            '[sync.custom.t.options]\npartial_dir = ".p"\npartial = false',
            "",
            "target 't': sync.custom.t.options.partial_dir: partial_dir needs partial = true",
        ),
        (
            "",
            '[sync.defaults]\nbackup_dir = "old"',
            "target 't': sync.defaults.backup_dir: backup_dir needs backup = true",
        ),
        (
            'preset = "safe"\n[sync.custom.t.options]\nquiet = true',
            "",
            "sync.custom.t.options.quiet: quiet conflicts with verbose (set at preset 'safe')",
        ),
        (
            "rsync_size_only = true\nrsync_checksum = true",
            "",
            "sync.custom.t.rsync_size_only: size_only conflicts with checksum",
        ),
        (
            "[sync.custom.t.options]\nsize_only = true\nignore_times = true",
            "",
            "sync.custom.t.options.size_only: size_only conflicts with ignore_times",
        ),
        (
            '[sync.custom.t.options]\nmax_size = "10Q"',
            "",
            "sync.custom.t.options.max_size: '10Q' is not a size",
        ),
        (
            '[sync.custom.t.options]\nmax_size = "1\u212a"',  # the Kelvin sign, not K
            "",
            "sync.custom.t.options.max_size: '1\u212a' is not a size",
        ),
        (
            '[sync.custom.t.options]\nmin_size = "1G"\nmax_size = "1M"',
            "",
            "sync.custom.t.options.min_size: min_size is larger than max_size",
        ),
        ("", "[sync.defaults]\ntimeout = 0", "sync.defaults.timeout: must be greater than 0"),
        (
            '[sync.custom.t.options]\nbackup = true\nbackup_dir = "old/../../other"',
            "",
            "sync.custom.t.options.backup_dir: 'old/../../other' contains '..'",
        ),
        (
            '[sync.custom.t.options]\npartial_dir = "../shared-partial"',
            "",
            "sync.custom.t.options.partial_dir: '../shared-partial' contains '..'",
        ),
        (
            '[sync.custom.t.options]\npartial_dir = "/var/tmp/pdb-partial"',
            "",
            "target 't': sync.custom.t.options.partial_dir: '/var/tmp/pdb-partial' resolves to "
            "'/var/tmp/pdb-partial', not inside pdb_dir",
        ),
        (
            "rsync_contimeout = -5",
            "",
            "sync.custom.t.rsync_contimeout: must be greater than 0, got -5",
        ),
        (
            'preset = "fsat"',
            "",
            "sync.custom.t.preset: unknown preset 'fsat'; "
            "valid presets: safe, fast, minimal, conservative",
        ),
        (
            '[sync.custom.t.options]\nexclude = ["--delete-excluded"]',
            "",
            "sync.custom.t.options.exclude: '--delete-excluded' starts with '-'",
        ),
        (
            '[sync.custom.t.options]\ninclude = ["a\\nb"]',
            "",
            "sync.custom.t.options.include: 'a\\nb' contains a control character",
        ),
        (
            '[sync.custom.t.options]\nexclude = ["+ *.cif"]',
            "",
            "is rsync filter-rule syntax",
        ),
        (
            '[sync.custom.t.options]\nexclude_from = "--files-from=/etc/passwd"',
            "",
            "sync.custom.t.options.exclude_from: '--files-from=/etc/passwd' starts with '-'",
        ),
        (
            '[sync.custom.t.options]\ninclude_from = "missing.txt"',
            "",
            "sync.custom.t.options.include_from: file ",
        ),
        (
            '[sync.custom.t.options]\nchmod = "u+rwx;rm"',
            "",
            "sync.custom.t.options.chmod: 'u+rwx;rm' is not an rsync --chmod spec",
        ),
        (
            "[sync.custom.t.options]\ndelet = true",
            "",
            "sync.custom.t.options: unknown key 'delet' (did you mean 'delete'?)",
        ),
        (
            'rsync_delete = "yes"',
            "",
            "sync.custom.t.rsync_delete: must be of type boolean",
        ),
        ("", "[sync.defaults]\nretry = -1", "sync.defaults.retry: -1 is less than the minimum"),
    ],
)
def test_each_invalid_option_is_one_clear_line(tmp_path, target_extra, top, expected):
    message = _fails(_config(tmp_path, target_extra, top))
    assert expected in message
    assert str(tmp_path / "config.toml") in message


def test_missing_from_file_is_named_with_its_resolved_path(tmp_path):
    message = _fails(_config(tmp_path, '[sync.custom.t.options]\ninclude_from = "missing.txt"'))
    assert f"file '{tmp_path / 'missing.txt'}' does not exist" in message


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--max-size", "10Q"), "--max-size: '10Q' is not a size"),
        (("--max-size", "1\u212a"), "--max-size: '1\u212a' is not a size"),  # Kelvin sign
        (("--min-size", "\u0663K"), "--min-size: '\u0663K' is not a size"),
        (("--max-size", "1" * 40 + "K"), "--max-size: expected a number such as 2 or 0.5"),
        (("--timeout", "0"), "--timeout: must be greater than 0"),
        (("--exclude=-x",), "--exclude: '-x' starts with '-'"),
        (("--exclude-from", "nope.txt"), "--exclude-from: file"),
        (("--size-only", "--checksum"), "--size-only: size_only conflicts with checksum"),
        (("--partial-dir", "p", "--no-partial"), "--partial-dir: partial_dir needs partial"),
    ],
)
def test_invalid_command_line_options_are_one_clear_line(tmp_path, flags, expected):
    assert expected in _fails(_config(tmp_path), *flags)


def test_command_line_can_resolve_a_config_conflict(tmp_path):
    config = _config(tmp_path, 'preset = "fast"\n[sync.custom.t.options]\nverbose = true')
    with pytest.raises(ConfigError):
        target_options(load_config(config), "t")
    result = run_cli("--config", str(config), "sync", "t", "--dry-run", "--no-rsync-quiet")
    assert result.code == 0, result.stderr
    assert " -v " in result.text and " -q " not in result.text


# -- the schema and the docs know every option ------------------------------------------


def test_config_schema_lists_every_option_and_legacy_key():
    schema = contracts.schema("config")
    assert set(schema["$defs"]["options"]["properties"]) == set(SPECS)
    target = schema["$defs"]["target"]["properties"]
    assert {k for k in target if k.startswith("rsync_")} == {f"rsync_{k}" for k in RSYNC_KEYS}
    assert target["preset"]["enum"] == list(PRESETS)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, MAX_RETRY_DELAY + 0.001, 10**10])
def test_retry_delay_is_finite_and_at_most_a_day(value):
    with pytest.raises(ValueError, match=r"finite|at most 86400"):
        check_value("retry_delay", value, None)


def test_retry_delay_of_exactly_a_day_or_zero_is_fine():
    assert MAX_RETRY_DELAY == 86400.0
    assert check_value("retry_delay", 86400, None) == 86400.0
    assert check_value("retry_delay", 0, None) == 0.0


@pytest.mark.parametrize(("key", "value"), [("backup_dir", "a/.."), ("partial_dir", "..")])
def test_a_relative_backup_or_partial_dir_may_not_climb(key, value):
    with pytest.raises(ValueError, match=r"contains '\.\.'"):
        check_value(key, value, None)


@pytest.mark.parametrize("value", ["old", ".rsync-partial", "a/b..c", "/abs/../x"])
def test_other_backup_and_partial_dirs_pass_the_value_check(value):
    assert check_value("partial_dir", value, None) == value


def test_docs_name_every_option_and_flag():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    for spec in OPTIONS:
        assert f"`{spec.key}`" in docs, spec.key
        if spec.cli:
            assert spec.cli in docs, spec.cli
    for preset in PRESETS:
        assert f"`{preset}`" in docs


#: JSON Schema types each kind of option table row may have in schemas/config.schema.json.
_SCHEMA_TYPES = {
    "bool": {"boolean"},
    "int": {"integer"},
    "positive": {"integer"},
    "count": {"integer"},
    "delay": {"number"},
    "size": {"integer", "string"},
    "list": {"array"},  # a lone string is not a list in the config (the schema says so)
    "str": {"string"},
    "path": {"string"},
}


def _types(prop: dict) -> set[str]:
    if "type" in prop:
        return {prop["type"]} if isinstance(prop["type"], str) else set(prop["type"])
    return set().union(*(_types(p) for p in prop.get("anyOf", prop.get("oneOf", []))))


def test_the_config_schema_lists_exactly_the_option_table():
    """The option table in pdbsync/config/options.py is the one source: adding an option is one
    row there plus its schema entry, and this test says when the two disagree."""
    from pdbsync import contracts

    schema = contracts.schema("config")
    properties = schema["$defs"]["options"]["properties"]
    assert set(properties) == {spec.key for spec in OPTIONS}
    for spec in OPTIONS:
        assert _types(properties[spec.key]) == _SCHEMA_TYPES[spec.kind], spec.key
    target = schema["$defs"]["target"]["properties"]
    legacy = {key for key in target if key.startswith("rsync_")}
    assert legacy == {f"rsync_{spec.key}" for spec in OPTIONS if spec.rsync is not None}
    for key in legacy:
        spec = SPECS[key.removeprefix("rsync_")]
        assert _types(target[key]) == _SCHEMA_TYPES[spec.kind], key


def test_a_targets_config_values_are_checked_once(tmp_path, monkeypatch):
    """load_config checks every option value; resolving a target's options afterwards
    reuses those checked layers instead of checking (and parsing) them again."""
    import pdbsync.config.options as options_module
    from pdbsync.config.load import load_config, target_options

    config_path = tmp_path / "c.toml"
    config_path.write_text(
        '[sync.defaults]\ntimeout = 60\n[sync.custom.a]\nurl = "h::m/a/"\ndest = "a"\n'
        'preset = "safe"\n[sync.custom.a.options]\nmax_size = "5G"\n'
    )
    config = load_config(config_path)
    calls = []
    original = options_module.check_value

    def counting(key, value, base_dir):
        calls.append(key)
        return original(key, value, base_dir)

    monkeypatch.setattr(options_module, "check_value", counting)
    resolved = target_options(config, "a")
    assert calls == []
    assert (resolved.timeout, resolved.max_size, resolved.checksum) == (60, 5 * 1024**3, True)
    assert resolved.source("timeout") == "defaults" and resolved.source("checksum") == "preset safe"


# -- one checker per kind ---------------------------------------------------------------


def test_every_option_kind_has_exactly_one_checker():
    """check_value looks a value's checker up by its row's kind: a new kind without a
    checker would fail on the first value, a checker no row uses is dead code."""
    from pdbsync.config.options import _CHECKS

    assert {spec.kind for spec in OPTIONS} == set(_CHECKS)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("delete", "yes", "must be true or false, not 'yes'"),
        ("modify_window", True, "must be a whole number, not True"),
        ("modify_window", 1.5, "must be a whole number, not 1.5"),
        ("modify_window", -1, "must not be negative, got -1"),
        ("retry", -1, "must not be negative, got -1"),
        ("timeout", 0, "must be greater than 0, got 0"),
        ("retry_delay", "5", "must be a number of seconds, not '5'"),
        ("retry_delay", False, "must be a number of seconds, not False"),
        ("retry_delay", -0.5, "must not be negative, got -0.5"),
        ("max_size", True, "not a size: True"),
        ("exclude", {"a": 1}, "must be a list of patterns"),
        ("exclude", ["ok", ""], "empty pattern"),
        ("include", [3], "must be a string, not 3"),
        ("chmod", 644, "must be a string, not 644"),
        ("backup_dir", "", "empty path"),
        ("partial_dir", "-x", "'-x' starts with '-' and would be read as an rsync option"),
        ("include_from", 1, "must be a string, not 1"),
        ("include_from", "", "empty path"),
    ],
)
def test_each_kind_refuses_a_wrong_value_in_its_own_words(key, value, expected):
    """The messages a library caller gets for values the config schema would have
    caught first (so test_each_invalid_option_is_one_clear_line cannot see them)."""
    with pytest.raises(ValueError) as caught:
        check_value(key, value, None)
    assert expected in str(caught.value)


def test_each_kind_normalises_what_it_accepts(tmp_path):
    patterns = tmp_path / "patterns.txt"
    patterns.write_text("*.cif\n")
    assert check_value("delete", True, None) is True
    assert check_value("modify_window", 0, None) == 0
    assert check_value("retry_delay", 2, None) == 2.0
    assert isinstance(check_value("retry_delay", 2, None), float)
    assert check_value("max_size", "1K", None) == 1024
    assert check_value("exclude", "*.tmp", None) == ("*.tmp",)
    assert check_value("exclude", ["a", "b"], None) == ("a", "b")
    assert check_value("include_from", "patterns.txt", tmp_path) == str(patterns)
    assert check_value("chmod", "Du+rwx,Fgo-w", None) == "Du+rwx,Fgo-w"
