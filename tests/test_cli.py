"""The command line as a user meets it: entry points, logging, docs kept in step."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pdb_sync_command, run_cli

from pdbsync.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _options(parser) -> set[str]:
    found = set()
    for action in parser._actions:
        if action.help == "==SUPPRESS==":
            continue
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
    return found


def test_every_option_is_documented():
    docs = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in (ROOT / "docs").glob("*.md")
    )
    missing = sorted(
        o
        for o in _options(build_parser()) - {"--help", "--version"}
        if not re.search(re.escape(o) + r"(?![\w-])", docs)
    )
    assert not missing, f"options missing from README.md/docs: {missing}"


def test_installed_command_and_module_agree_on_version():
    from pdbsync import __version__

    for command in (["pdb-sync", "--version"], [sys.executable, "-m", "pdbsync", "--version"]):
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
        assert out.stdout.strip() == f"pdb-sync {__version__}"


def test_no_command_is_a_usage_error():
    result = run_cli()
    assert result.code == 2 and "sync" in result.stderr


def test_unknown_flag_is_one_line_exit_2():
    result = subprocess.run(
        pdb_sync_command("sync", "--paralel", "3"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unrecognized arguments: --paralel" in lines[0]


def test_log_file_gets_json_diagnostics(four_targets, tmp_path):
    log = tmp_path / "diag.jsonl"
    result = run_cli("--config", str(four_targets), "-vv", "--log-file", str(log), "sync", "emdb")
    assert result.code == 0, result.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records, "nothing logged"
    assert all("record" in r and "text" in r for r in records)
    assert any("rsync" in r["record"]["message"] for r in records)


@pytest.mark.parametrize("command", ["console-script", "module"])
def test_the_quick_exit_loses_no_output(four_targets, tmp_path, command):
    """The command ends with os._exit (no interpreter teardown): every byte of stdout,
    the log file and the summary must be out by then, through a pipe and in text mode
    too, and the exit status is the summary's."""
    argv = ["pdb-sync"] if command == "console-script" else [sys.executable, "-m", "pdbsync"]
    log, summary = tmp_path / "diag.jsonl", tmp_path / "s.json"
    common = ["--config", str(four_targets), "-vv", "--log-file", str(log), "sync", "--all"]
    json_run = subprocess.run(
        [*argv, *common, "--format", "json", "--summary", str(summary)],
        capture_output=True,
        timeout=120,
    )
    events = [json.loads(line) for line in json_run.stdout.splitlines()]
    assert events and events[-1]["type"] == "run_finished", json_run.stdout[-300:]
    assert json_run.returncode == events[-1]["summary"]["exit_code"] == 0
    assert json.loads(summary.read_text())["exit_code"] == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("success" in r["record"]["message"] for r in records), "log file cut short"
    text_run = subprocess.run([*argv, *common], capture_output=True, text=True, timeout=120)
    assert text_run.returncode == 0, text_run.stderr
    assert text_run.stdout.rstrip().splitlines()[-1].startswith("Total time:")


def test_unwritable_log_file_is_a_usage_error(four_targets, tmp_path):
    result = run_cli("--config", str(four_targets), "--log-file", str(tmp_path), "sync", "emdb")
    assert result.code == 2 and "--log-file" in result.stderr


def test_unusable_summary_path_is_refused_before_the_run(four_targets, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    summary = blocker / "summary.json"
    result = run_cli("--config", str(four_targets), "sync", "emdb", "--summary", str(summary))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"pdb-sync: error: --summary {summary}: {blocker} is not a directory"
    ]
    assert not (tmp_path / "pdb").exists()  # nothing ran


@pytest.mark.parametrize("delay", ["inf", "-inf", "nan", "1e10", "86400.5", "-1", "soon"])
def test_retry_delay_must_be_finite_and_bounded(four_targets, tmp_path, delay):
    result = run_cli(
        "--config", str(four_targets), "sync", "emdb", "--retry", "1", f"--retry-delay={delay}"
    )
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "argument --retry-delay:" in lines[0]
    assert not (tmp_path / "pdb").exists()


def test_retry_delay_at_the_maximum_is_accepted(four_targets):
    from pdbsync.config.options import MAX_RETRY_DELAY

    result = run_cli(
        "--config", str(four_targets), "sync", "emdb", "--retry-delay", f"{MAX_RETRY_DELAY:g}"
    )
    assert result.code == 0, result.stderr


def test_an_unexpected_exception_is_exit_70_and_one_line(monkeypatch, four_targets, tmp_path):
    """A bug is not a failed target (exit 1): one line, exit 70, the traceback in the log."""
    import pdbsync.api

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pdbsync.api, "sync_targets", broken)
    result = run_cli("--config", str(four_targets), "sync", "--all")
    assert result.code == 70
    assert result.stderr.splitlines() == [
        "pdb-sync: internal error: RuntimeError('boom') "
        "(-v or --log-file PATH shows the traceback; please report it)"
    ]
    log_file = tmp_path / "log.jsonl"
    result = run_cli("--log-file", str(log_file), "--config", str(four_targets), "sync", "--all")
    assert result.code == 70 and f"traceback in {log_file}" in result.stderr
    assert "Traceback" not in result.stderr and "RuntimeError: boom" in log_file.read_text()
    verbose = run_cli("-v", "--config", str(four_targets), "sync", "--all")
    assert verbose.code == 70 and "Traceback (most recent call last)" in verbose.stderr


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--parallel", "\u0663"), ("--parallel", "1_0"), ("--retry", " 2"), ("--retry-delay", "inf")],
)
def test_number_flags_take_ascii_digits_only(flag, value):
    result = run_cli("sync", flag, value)
    assert result.code == 2
    assert f"argument {flag}: expected " in result.stderr and repr(value) in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        (("sync",), "--timeout", "\u0663"),  # the option table's whole numbers
        (("sync",), "--bwlimit", "1_0"),
        (("sync",), "--modify-window", " 2"),
        pytest.param(("sync",), "--contimeout", "9" * 400, id="contimeout-400-digits"),
        (("mirrors", "test"), "--timeout", "1e1"),
        (("mirrors", "test"), "--timeout", "\u0663"),
        (("mirrors", "test"), "--probes", "1_0"),
        (("history",), "--limit", "\u0663"),
        (("history",), "--limit", "2 "),
    ],
)
def test_every_number_flag_reads_numbers_one_way(command, flag, value):
    """Every whole-number and seconds flag goes through pdbsync.numbers: ASCII digits
    only, one line naming the flag, before any config is read."""
    result = run_cli(*command, flag, value)
    assert result.code == 2
    assert f"argument {flag}: expected " in result.stderr and repr(value) in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("command", "flag", "value", "expected"),
    [
        (("mirrors", "test"), "--timeout", "0", "must be more than 0, got 0"),
        (("mirrors", "test"), "--timeout", "61", "must be between 0 and 60, got 61"),
        (("mirrors", "test"), "--probes", "11", "must be between 1 and 10, got 11"),
        (("history",), "--limit", "-1", "must be 0 or more, got -1"),
    ],
)
def test_number_flags_out_of_range_say_the_range(command, flag, value, expected):
    result = run_cli(*command, flag, value)
    assert result.code == 2
    assert f"argument {flag}: {expected} (see " in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "value", ["\u0663K", "1\u212a", pytest.param("1" * 400 + "K", id="400-digits")]
)
def test_min_free_reads_sizes_in_ascii(value):
    """``\\d`` took other scripts' digits, the Kelvin sign passed as K and then crashed
    the unit lookup (exit 70), and 400 digits overflowed int(float(...)) (exit 70)."""
    result = run_cli("env", "doctor", "--min-free", value)
    assert result.code == 2, result.stderr
    assert "argument --min-free: " in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
