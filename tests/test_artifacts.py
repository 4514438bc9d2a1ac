"""CI and monitoring artifacts: JUnit XML, Markdown, Prometheus text, ``summary show``.

The JUnit files are validated against the Jenkins xUnit plugin's JUnit XSD (vendored in
tests/fixtures/junit/, read by xmlschema) and read back with junitparser, the parser
many CI helpers use; the metrics are read back with prometheus-client's own parser.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import threading
from pathlib import Path
from xml.etree import ElementTree

import pytest
import xmlschema
from conftest import LiveRun, run_cli, write_config
from junitparser import Error, Failure, JUnitXml, Skipped
from prometheus_client.parser import text_string_to_metric_families

from pdbsync import units
from pdbsync.cli.status import SUMMARY_FORMATS
from pdbsync.report import artifacts
from pdbsync.store import history as state
from pdbsync.times import parse_utc

JUNIT_XSD = Path(__file__).parent / "fixtures" / "junit" / "junit-10.xsd"


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(JUNIT_XSD)


@pytest.fixture
def targets(mirror, tmp_path):
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "sifts": {"url": mirror.url("ftp_data", "sifts/"), "dest": "sifts"},
            "broken": {"url": mirror.url("ftp_data", "no-such-dir/"), "dest": "broken"},
            "emdb": {"url": mirror.url("ftp_data", "emdb/"), "dest": "emdb"},
        },
    )


@pytest.fixture
def failed_run(targets, tmp_path):
    """sifts succeeds, broken fails, emdb is skipped (--fail-fast): every JUnit verdict
    but ``cancelled`` from one real run, with its summary, JUnit file and metrics."""
    out = tmp_path / "out"
    result = run_cli(
        "--config",
        str(targets),
        "sync",
        "sifts",
        "broken",
        "emdb",
        "--fail-fast",
        "--summary",
        str(out / "summary.json"),
        "--junit",
        str(out / "junit.xml"),
        "--metrics",
        str(out / "pdb_sync.prom"),
    )
    assert result.code == 1, result.stderr
    return out, json.loads((out / "summary.json").read_text())


def test_formats_are_listed_once():
    assert SUMMARY_FORMATS == artifacts.FORMATS


def test_junit_is_valid_and_has_one_testcase_per_target(failed_run, junit_schema):
    out, summary = failed_run
    junit_schema.validate(str(out / "junit.xml"))
    suite = next(iter(JUnitXml.fromfile(str(out / "junit.xml"))))
    cases = {case.name: case for case in suite}
    assert list(cases) == [r["name"] for r in summary["results"]]
    results = {r["name"]: r for r in summary["results"]}
    for name, case in cases.items():
        assert case.classname == "pdb-sync"
        assert case.time == pytest.approx(results[name]["duration_s"], abs=0.001)
    assert cases["sifts"].is_passed
    (failure,) = cases["broken"].result
    assert isinstance(failure, Failure)
    broken = results["broken"]
    assert broken["exit_meaning"] in failure.message and broken["error"] in failure.message
    assert broken["error"] in cases["broken"].system_err  # rsync's own stderr lines
    assert broken["error"] in failure.text and broken["url"] in failure.text
    (skipped,) = cases["emdb"].result
    assert isinstance(skipped, Skipped)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (3, 1, 0, 1)


def test_a_cancelled_target_is_a_junit_error(mirror, tmp_path, junit_schema):
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "quick": {"url": mirror.url("ftp_data", "emdb/"), "dest": "quick"},
            "stuck": {"url": mirror.url("stall", "sifts/"), "dest": "stuck"},
        },
    )
    junit = tmp_path / "junit.xml"
    run = LiveRun(
        "--config", str(config), "sync", "--all", "--parallel", "2", "--format", "json",
        "--junit", str(junit),
    )  # fmt: skip
    run.wait_for(lambda e: e["type"] == "sync_finished" and e["name"] == "quick")
    run.proc.send_signal(signal.SIGTERM)
    code, _events, stderr = run.finish()
    assert code == 143, stderr
    junit_schema.validate(str(junit))
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    cases = {case.name: case for case in suite}
    (error,) = cases["stuck"].result
    assert isinstance(error, Error) and "SIGTERM" in error.message
    assert cases["quick"].is_passed


def test_summary_show_junit_matches_the_live_one_but_for_stderr(failed_run, junit_schema):
    out, _summary = failed_run
    shown = run_cli("summary", "show", str(out / "summary.json"), "--format", "junit")
    assert shown.code == 0, shown.stderr
    junit_schema.validate(shown.stdout.decode())
    live = (out / "junit.xml").read_bytes()
    assert shown.stdout.replace(b"\n", b"").count(b"<testcase") == live.count(b"<testcase")
    assert b"<system-err>" in live and b"<system-err>" not in shown.stdout


def test_junit_escapes_what_rsync_prints(failed_run, junit_schema):
    _out, summary = failed_run
    summary["results"][1]["error"] = 'bad <path> & "quote" \x1b[31m\x00 end'
    xml = artifacts.junit_xml(summary, {"broken": ["line with \x07 bell & <tag>"]})
    junit_schema.validate(xml.decode())
    case = next(c for c in next(iter(JUnitXml.fromstring(xml.decode()))) if c.name == "broken")
    assert 'bad <path> & "quote"' in case.result[0].message


def test_metrics_follow_the_summary(failed_run):
    out, summary = failed_run
    families = {
        family.name: family
        for family in text_string_to_metric_families((out / "pdb_sync.prom").read_text())
    }
    text = (out / "pdb_sync.prom").read_text()
    for name in families:
        assert f"# HELP {name}" in text.replace("_total ", " ")  # every family explained
    results = {r["name"]: r for r in summary["results"]}

    def samples(family: str, **labels) -> dict:
        return {
            s.labels["target"]: s.value
            for s in families[family].samples
            if all(s.labels.get(k) == v for k, v in labels.items())
        }

    assert families["pdb_sync_bytes_transferred"].type == "counter"
    assert families["pdb_sync_target_status"].type == "gauge"
    assert samples("pdb_sync_target_duration_seconds") == {
        name: pytest.approx(r["duration_s"]) for name, r in results.items()
    }
    assert samples("pdb_sync_files_transferred")["sifts"] == results["sifts"]["files_transferred"]
    assert samples("pdb_sync_target_status", status="failed") == {
        "sifts": 0,
        "broken": 1,
        "emdb": 0,
    }
    assert samples("pdb_sync_last_success_timestamp_seconds") == {
        "sifts": pytest.approx(parse_utc(results["sifts"]["finished_at"]).timestamp())
    }
    (exit_sample,) = families["pdb_sync_run_exit_code"].samples
    assert exit_sample.value == summary["exit_code"] == 1


def test_metrics_remember_the_last_success_and_count_bytes_across_runs(targets, tmp_path):
    metrics = tmp_path / "m.prom"
    assert run_cli("--config", str(targets), "sync", "sifts").code == 0
    first_bytes = state.target_states()["sifts"]["bytes_transferred_total"]
    assert first_bytes > 0
    good = state.target_states()["sifts"]["last_success"]["finished_at"]
    # sifts now fails (its source is gone), but its last success is still exported
    broken = targets.read_text().replace("/sifts/", "/no-such-dir/")
    targets.write_text(broken)
    assert run_cli("--config", str(targets), "sync", "sifts", "--metrics", str(metrics)).code == 1
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    (last,) = families["pdb_sync_last_success_timestamp_seconds"].samples
    assert last.value == pytest.approx(parse_utc(good).timestamp())
    (counted,) = families["pdb_sync_bytes_transferred"].samples
    assert counted.name == "pdb_sync_bytes_transferred_total" and counted.value == first_bytes


def test_artifacts_are_written_through_symlinks_and_into_fifos(targets, tmp_path):
    real = tmp_path / "real.prom"
    real.write_text("old")
    link = tmp_path / "link.prom"
    link.symlink_to(real)
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = run_cli(
        "--config", str(targets), "sync", "sifts",
        "--metrics", str(link), "--junit", str(fifo),
    )  # fmt: skip
    reader.join(10)
    assert result.code == 0, result.stderr
    assert link.is_symlink() and "pdb_sync_target_status" in real.read_text()
    assert fifo.exists() and not fifo.is_file()
    assert received and b"<testsuites" in received[0]


@pytest.mark.parametrize("flag", ["--junit", "--metrics"])
def test_an_unusable_artifact_path_is_refused_before_the_run(targets, tmp_path, flag):
    result = run_cli("--config", str(targets), "sync", "sifts", flag, str(tmp_path))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"pdb-sync: error: {flag} {tmp_path}: is a directory; give the path of a file"
    ]
    assert not (tmp_path / "pdb").exists()


def test_metrics_for_a_plan_is_a_usage_error(targets, tmp_path):
    result = run_cli(
        "--config", str(targets), "sync", "sifts", "--plan", "--metrics", str(tmp_path / "m")
    )
    assert result.code == 2 and "--metrics" in result.stderr
    assert not (tmp_path / "pdb").exists()


def test_an_artifact_that_cannot_be_written_fails_the_run_after_it(targets, tmp_path):
    summary = tmp_path / "s.json"
    result = run_cli(
        "--config", str(targets), "sync", "sifts",
        "--junit", "/dev/full", "--summary", str(summary),
    )  # fmt: skip
    assert result.code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("pdb-sync: error: --junit /dev/full: cannot write")
    assert json.loads(summary.read_text())["results"][0]["status"] == "success"
    assert state.last_runs()  # recorded before the artifacts


def test_markdown_is_a_table_with_a_row_per_target(failed_run):
    out, summary = failed_run
    shown = run_cli("summary", "show", str(out / "summary.json"), "--format", "markdown")
    assert shown.code == 0
    lines = shown.text.splitlines()
    assert lines[0].startswith("### pdb-sync sync: 1/3 succeeded")
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [
        r["name"] for r in summary["results"]
    ]
    assert all(row.count(" | ") == 5 for row in rows)  # a pipe in an error stays in its cell


def test_github_step_summary_is_appended_to(targets, tmp_path):
    step = tmp_path / "step_summary.md"
    step.write_text("earlier step\n")
    for name in ("sifts", "emdb"):
        result = run_cli(
            "--config", str(targets), "sync", name,
            environ={"GITHUB_STEP_SUMMARY": str(step)},
        )  # fmt: skip
        assert result.code == 0, result.stderr
    text = step.read_text()
    assert text.startswith("earlier step\n")
    assert text.count("### pdb-sync sync: 1/1 succeeded") == 2
    assert "| sifts | success |" in text and "| emdb | success |" in text


def test_summary_show_text_and_json(failed_run):
    out, summary = failed_run
    text = run_cli("summary", "show", str(out / "summary.json"))
    assert text.code == 0 and text.text.startswith("=== Sync Summary ===")
    assert "broken: exit" in text.text
    shown = run_cli("summary", "show", str(out / "summary.json"), "--format", "json")
    assert json.loads(shown.text) == summary


def test_summary_show_a_plan(targets, tmp_path):
    plan = tmp_path / "plan.json"
    assert (
        run_cli("--config", str(targets), "sync", "sifts", "--plan", "--summary", str(plan)).code
        == 0
    )
    shown = run_cli("summary", "show", str(plan), "--format", "markdown")
    assert shown.code == 0 and shown.text.startswith("### pdb-sync plan: 1/1 planned")
    metrics = run_cli("summary", "show", str(plan), "--format", "prometheus")
    assert metrics.code == 2 and "plan" in metrics.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not JSON"),
        (b'{"v": 1}', "not a valid pdb-sync summary"),
        (None, "cannot read"),
    ],
)
def test_summary_show_refuses_what_is_not_a_summary(tmp_path, content, problem):
    path = tmp_path / "s.json"
    if content is not None:
        path.write_bytes(content)
    result = run_cli("summary", "show", str(path))
    assert result.code == 2
    (line,) = result.stderr.splitlines()
    assert f"summary show {path}: {problem}" in line


#: What a summary file may hold in any string field: control characters, every kind of
#: line break (CRLF, a lone CR, and those str.splitlines also breaks on).
HOSTILE_STRINGS = (
    "esc \x1b[31m nul \x00 bell \x07 end",
    "vt\x0bff\x0cnel\x85ls\u2028ps\u2029end",
    "lone\rcr",
    "crlf\r\nline\nlf",
)
#: The same for JUnit, where line breaks are well-formed XML already: each with a
#: character XML 1.0 cannot carry.
JUNIT_HOSTILE_STRINGS = (*HOSTILE_STRINGS[:2], "cr\r crlf\r\n lf\n soh\x01 end")
#: The string fields of a summary that reach JUnit or Markdown.
RESULT_FIELDS = ("name", "url", "dest", "error", "exit_meaning", "mirror", "mirror_reason")


def _hostile_summaries(summary: dict, value: str):
    """``summary`` with ``value`` in one string field at a time."""
    for field in RESULT_FIELDS:
        for index in range(len(summary["results"])):
            changed = json.loads(json.dumps(summary))
            changed["results"][index][field] = f"{field}-{index} {value}"
            yield f"results[{index}].{field}", changed
    changed = json.loads(json.dumps(summary))
    changed["version"] = value
    changed["host"] = value
    yield "version and host", changed


@pytest.mark.parametrize("value", JUNIT_HOSTILE_STRINGS)
def test_every_string_field_with_control_characters_gives_valid_junit(
    value, failed_run, junit_schema, tmp_path
):
    _out, summary = failed_run
    path = tmp_path / "hostile.json"
    for case, data in _hostile_summaries(summary, value):
        path.write_text(json.dumps(data))
        shown = run_cli("summary", "show", str(path), "--format", "junit")
        assert shown.code == 0, (case, shown.stderr)
        ElementTree.fromstring(shown.stdout)  # any XML 1.0 parser
        junit_schema.validate(shown.stdout.decode())
        suite = next(iter(JUnitXml.fromstring(shown.stdout.decode())))
        names = [testcase.name for testcase in suite]
        assert len(names) == 3 and all(names), case
        assert (suite.tests, suite.failures, suite.skipped) == (3, 1, 1), case


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_every_string_field_with_line_breaks_keeps_each_markdown_row_one_line(
    value, failed_run, tmp_path
):
    _out, summary = failed_run
    path = tmp_path / "hostile.json"
    for case, data in _hostile_summaries(summary, value):
        path.write_text(json.dumps(data))
        shown = run_cli("summary", "show", str(path), "--format", "markdown")
        assert shown.code == 0, (case, shown.stderr)
        lines = shown.text.splitlines()
        assert len(lines) == 9, (case, lines)  # heading, blank, 2 + 3 table lines, blank, totals
        rows = lines[4:7]
        assert all(row.startswith("| ") and row.endswith(" |") for row in rows), (case, rows)
        assert all(row.count(" | ") == 5 for row in rows), (case, rows)
        assert not any(char in shown.text for char in "\r\x00\x07\x1b\x0b\x0c\x85"), case


def test_a_huge_duration_prints_bounded_in_text_markdown_and_junit(
    failed_run, junit_schema, tmp_path
):
    _out, summary = failed_run
    for result in summary["results"]:
        result["duration_s"] = 1e305
    summary["timings"] = {"total_s": 1.7976931348623157e308, "average_s": 1e305}
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(summary))
    shown = {
        fmt: run_cli("summary", "show", str(path), "--format", fmt)
        for fmt in ("text", "markdown", "junit")
    }
    for fmt, result in shown.items():
        assert result.code == 0, (fmt, result.stderr)
        longest = max(len(run) for run in re.findall(r"[0-9]+", result.text))
        assert longest <= 10, (fmt, result.text)
    assert "broken: exit" in shown["text"].text and "after >100y" in shown["text"].text
    assert "Total time: >100y | Average: >100y" in shown["text"].text
    assert "| broken | **failed** | >100y |" in shown["markdown"].text
    assert ">100y in total." in shown["markdown"].text
    junit_schema.validate(shown["junit"].text)
    suite = next(iter(JUnitXml.fromstring(shown["junit"].text)))
    hundred_years = 100 * 365.25 * 86400
    assert {case.time for case in suite} == {hundred_years}
    assert suite.time == hundred_years


def test_durations_for_people_are_bounded_and_say_what_is_unknown():
    assert units.seconds_text(12.34) == "12.3s"
    assert units.seconds_text(12.345, 2, " s") == "12.35 s"
    assert units.seconds_text(3e9) == "3000000000.0s"  # under 100 years: as it is
    assert units.seconds_text(1e305) == units.seconds_text(math.inf) == ">100y"
    assert units.seconds_text(math.nan) == "?"
    assert units.junit_seconds(math.inf) == units.junit_seconds(1e305) == "3155760000.000"
    assert units.junit_seconds(math.nan) == units.junit_seconds(None) == "0.000"


def test_junit_replaces_what_xml_cannot_carry_even_from_a_library_caller(failed_run):
    _out, summary = failed_run
    summary["results"][1]["name"] = "lone surrogate \udcff, \ufffe, nul \x00"
    summary["results"][1]["error"] = "surrogate \ud800 in an error"
    xml = artifacts.junit_xml(summary, {summary["results"][1]["name"]: ["\udcff \x01"]})
    root = ElementTree.fromstring(xml)
    names = [case.get("name") for case in root.iter("testcase")]
    assert names[1] == "lone surrogate \ufffd, \ufffd, nul \ufffd"
