"""What a person reads in text mode (issue 21): no empty ``[name]`` lines, no raw control
or bidi characters from a mirror, one ``pdb-sync: error:`` prefix, no ``--config ''``
fallback, a ``config validate`` that says what it will do with a missing pdb_dir, no
``0%`` progress line for a target with nothing to transfer, and ``-v`` on the same bulk
path as a plain run. Against a real rsync daemon on 127.0.0.1 wherever rsync speaks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import assert_valid_events, run_cli, write_config
from local_mirror import LocalMirror

import pdbsync
from pdbsync.errors import UsageError
from pdbsync.report.render import TextRenderer


@pytest.fixture
def utf8_rsync(monkeypatch):
    """rsync (the worker's child) in a UTF-8 locale, as on most desktops and servers."""
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


@pytest.fixture
def read_only_dest(mirror, tmp_path):
    """A dest on a tmpfs remounted read-only after a first sync, its files then removed
    (directories kept): the next sync's receiver fails on every file (``mkstemp ...
    Read-only file system``) while its progress line is running, and rsync writes a
    ``\\n`` to stderr before each of those errors. Skipped where mounting is not allowed."""
    mount = tmp_path / "ro"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        config = write_config(
            tmp_path / "c.toml",
            tmp_path,
            {"ro": {"url": mirror.url("ftp_data", "structures/"), "dest": "ro/structures"}},
        )
        first = run_cli("--config", str(config), "sync", "ro")
        assert first.code == 0, first.stderr
        files = [p for p in (mount / "structures").rglob("*") if p.is_file()]
        assert len(files) > 5
        for path in files:
            path.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield config
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# -- empty lines ------------------------------------------------------------------------


def test_rsync_errors_on_a_read_only_dest_bring_no_empty_lines(read_only_dest):
    text = run_cli("--config", str(read_only_dest), "sync", "ro")
    assert text.code == 1
    lines = text.text.splitlines()
    errors = [line for line in lines if line.startswith("[ro] rsync: [receiver] mkstemp ")]
    assert len(errors) > 5, text.text  # the case is real: an error line per file
    assert [line for line in lines if line.strip() == "[ro]"] == []

    json_run = run_cli("--config", str(read_only_dest), "sync", "ro", "--format", "json")
    assert json_run.code == 1
    assert_valid_events(json_run.events)
    output = [e for e in json_run.events if e["type"] == "output"]
    assert sum(e["line"].startswith("rsync: [receiver] mkstemp ") for e in output) > 5
    assert [e for e in output if not e["line"].strip()] == []


# -- control and bidi characters --------------------------------------------------------

EVIL = "evil\u202egpj.cif"  # reads as "evilfic.jpg" on a terminal
#: A motd's bidi isolates (rsync escapes a C0 control such as ESC itself, as ``\#033``).
MOTD = "Welcome to the \u2066mirror\u2069\n"


@pytest.mark.parametrize("verbose", [(), ("-v",)], ids=["plain", "-v"])
def test_control_and_bidi_characters_are_escaped_in_text_and_kept_in_json(
    tmp_path, utf8_rsync, verbose
):
    source = tmp_path / "src"
    source.mkdir()
    (source / EVIL).write_text("x")
    (source / "plain.cif").write_text("y")
    with LocalMirror(source, tmp_path / "m", motd=MOTD) as local:
        config = write_config(
            tmp_path / "c.toml",
            tmp_path / "pdb",
            {
                "t": {"url": local.url("ftp_data", ""), "dest": "t"},
                "j": {"url": local.url("ftp_data", ""), "dest": "j"},
            },
        )
        text = run_cli("--config", str(config), *verbose, "sync", "t", "--rsync-verbose")
        json_run = run_cli(
            "--config", str(config), "sync", "j", "--rsync-verbose", "--format", "json"
        )
    assert text.code == 0, text.stderr
    assert "[t] evil\\u202egpj.cif" in text.text.splitlines()
    assert "[t] Welcome to the \\u2066mirror\\u2069" in text.text.splitlines()
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text.text)
    assert json_run.code == 0, json_run.stderr
    lines = [e["line"] for e in json_run.events if e["type"] == "output"]
    assert EVIL in lines and "Welcome to the \u2066mirror\u2069" in lines
    assert (tmp_path / "pdb" / "t" / EVIL).is_file()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\u202eb", "a\\u202eb"),
        ("\u200e\u200f\u061c\u202a\u2069", "\\u200e\\u200f\\u061c\\u202a\\u2069"),
        ("bell\x07 del\x7f c1\x85 tab\t", "bell\\x07 del\\x7f c1\\x85 tab\\x09"),
        ("zero\u200bwidth \ufeffbom \U000e0001tag", "zero\\u200bwidth \\ufeffbom \\U000e0001tag"),
        ("café 日本 \U0001f9ec, spaces kept", "café 日本 \U0001f9ec, spaces kept"),
    ],
)
def test_visible_escapes_what_a_terminal_would_obey(raw, shown):
    from pdbsync.report.render import visible

    assert visible(raw) == shown


def test_an_error_line_escapes_what_it_quotes(tmp_path):
    result = run_cli("--config", str(tmp_path / "no\u202econfig.toml"), "sync", "--all")
    assert result.code == 2
    assert "no\\u202econfig.toml" in result.stderr and "\u202e" not in result.stderr


# -- one prefix, an explicit empty --config ---------------------------------------------


def test_an_argument_error_names_the_program_once():
    result = run_cli("sync", "--parallel", "x")
    assert result.code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("pdb-sync: error: sync: argument --parallel: ")
    assert line.endswith("(see 'pdb-sync sync --help')")
    assert line.count("pdb-sync") == 2  # the prefix, and the command to run for help


def test_an_empty_config_flag_is_refused_not_replaced_by_the_default(mirror, tmp_path):
    real = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {"emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"}},
    )
    result = run_cli("--config", "", "sync", "--list", environ={"PDB_SYNC_CONFIG": str(real)})
    assert result.code == 2
    assert result.stdout == b""
    (line,) = result.stderr.splitlines()
    assert line.startswith("pdb-sync: error: --config '': ")
    with pytest.raises(UsageError, match="config ''"):
        pdbsync.load_config("", environ={"PDB_SYNC_CONFIG": str(real)})


def test_an_empty_config_variable_counts_as_unset(tmp_path):
    """The choice documented in docs/configuration.md: an empty PDB_SYNC_CONFIG falls
    through to the XDG location, as an unset one does."""
    xdg = tmp_path / "xdg"
    (xdg / "pdb-sync").mkdir(parents=True)
    (tmp_path / "pdb").mkdir()
    write_config(xdg / "pdb-sync" / "config.toml", tmp_path / "pdb", {})
    result = run_cli(
        "config", "validate", environ={"PDB_SYNC_CONFIG": "", "XDG_CONFIG_HOME": str(xdg)}
    )
    assert result.code == 0, result.stderr
    assert result.text.endswith(f"{xdg / 'pdb-sync' / 'config.toml'}: OK\n")


# -- config validate and the mirror root ------------------------------------------------


def test_validate_says_a_missing_pdb_dir_will_be_created(tmp_path):
    config = tmp_path / "c.toml"
    pdb_dir = tmp_path / "not" / "yet"
    init = run_cli("--config", str(config), "config", "init", "--pdb-dir", str(pdb_dir))
    assert init.code == 0, init.stderr
    result = run_cli("--config", str(config), "config", "validate")
    assert result.code == 0, result.stderr
    assert result.text.splitlines() == [
        f"{config}: [paths] pdb_dir: {pdb_dir} does not exist yet; sync creates it (in {tmp_path})",
        f"{config}: OK",
    ]
    data = orjson.loads(run_cli("--config", str(config), "config", "validate", "--json").stdout)
    assert (
        data["valid"] is True and len(data["notes"]) == 1 and "sync creates it" in data["notes"][0]
    )
    assert not pdb_dir.exists(), "validate created it"


def test_validate_refuses_a_pdb_dir_that_cannot_be_created(tmp_path):
    """As root every directory is writable to os.access, so the parent here is a regular
    file: mkdir fails for root too (a read-only mount would also do, where mounting is
    allowed)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = write_config(tmp_path / "c.toml", blocker / "pdb", {})
    result = run_cli("--config", str(config), "config", "validate")
    assert result.code == 2
    assert result.stdout == b""
    assert result.stderr.splitlines() == [
        f"pdb-sync: error: {config}: [paths] pdb_dir: {blocker / 'pdb'} cannot be created: "
        f"{blocker} is not a directory"
    ]
    data = orjson.loads(run_cli("--config", str(config), "config", "validate", "--json").stdout)
    assert data["valid"] is False and "is not a directory" in data["problems"][0]


def test_validate_names_pdb_sync_dir_when_it_gives_the_root(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    config = tmp_path / "c.toml"
    config.write_text('[sync.custom.a]\nurl = "rsync://127.0.0.1:1/m/"\ndest = "a"\n')
    result = run_cli(
        "--config", str(config), "config", "validate", environ={"PDB_SYNC_DIR": str(blocker)}
    )
    assert result.code == 2
    assert f"PDB_SYNC_DIR: {blocker} is not a directory" in result.stderr


# -- progress with nothing transferred --------------------------------------------------


def test_an_up_to_date_target_prints_no_progress_line(four_targets):
    first = run_cli("--config", str(four_targets), "sync", "--all")
    assert first.code == 0, first.stderr
    progress = [line for line in first.text.splitlines() if re.match(r"\[\w+\] \d+% ", line)]
    assert {line.split()[0] for line in progress if " 100% " in line} == {
        "[mmcif]",
        "[pdb]",
        "[sifts]",
        "[emdb]",
    }, "the transfers' final lines are still shown"
    assert [line for line in progress if "(0 B" in line] == []
    again = run_cli("--config", str(four_targets), "sync", "--all")
    assert again.code == 0, again.stderr
    assert [line for line in again.text.splitlines() if re.match(r"\[\w+\] \d+% ", line)] == []
    assert again.text.count("Completed in") == 4


def test_the_demo_prints_no_zero_progress_line(tmp_path):
    demo = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"
    result = subprocess.run(
        [sys.executable, str(demo), "--workdir", str(tmp_path / "d"), "--entries", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Completed in" in result.stdout
    assert not re.search(r"\] 0% .*\(0 B", result.stdout), result.stdout


# -- sync -v keeps the bulk path --------------------------------------------------------


def test_verbose_text_sync_renders_output_lines_in_bulk(four_targets, monkeypatch):
    """``-v`` shows rsync's stats block; the lines must still reach the renderer as runs
    (TextRenderer.output_lines), not one event at a time: the bytes are the same
    (tests/test_output_lines.py), the CPU cost is not."""
    one_by_one: list[dict] = []
    runs: list[int] = []
    event, output_lines = TextRenderer.event, TextRenderer.output_lines

    def event_spy(self, item):
        if item["type"] == "output":
            one_by_one.append(item)
        event(self, item)

    def lines_spy(self, lines):
        runs.append(len(lines.lines))
        output_lines(self, lines)

    monkeypatch.setattr(TextRenderer, "event", event_spy)
    monkeypatch.setattr(TextRenderer, "output_lines", lines_spy)
    result = run_cli("--config", str(four_targets), "-v", "sync", "mmcif", "--rsync-verbose")
    assert result.code == 0, result.stderr
    assert "[mmcif] Number of files: " in result.text  # -v shows the stats block
    assert sum(runs) > 10 and one_by_one == []
