"""The HTML run report (pdbsync.report.html): ``sync --report`` and ``summary show
--format html``, from real runs against the loopback rsync daemon, then opened in a real
headless browser (Debian's chromium through Selenium and chromium-driver).

The runs are made once per module (:func:`reports`): a plain run, a run with retries (a
mirror that refuses the first connection, a daemon that is not there), a failed target
whose stderr is hostile (a daemon hook that prints markup, escape sequences and a
right-to-left override), a split target, a merged job array, 100 targets, and an older
summary without the timeline's fields.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import headless  # scripts/, on the path by conftest
import pytest
from conftest import run_cli, write_config
from local_mirror import LocalMirror

from pdbsync.times import seconds_between

#: What the hostile daemon hook prints on its way to failing the transfer.
HOSTILE = (
    "<script>window.pwned=1</script> \x1b[31mred\x1b[0m "
    "evil\u202egpj.cif <img src=x onerror=window.pwned=2>"
)
LABEL_WIDTH, TIMELINE_WIDTH = 150, 1000  # pdbsync.report.html's drawing constants


@pytest.fixture(scope="module")
def odd_mirror(archive, tmp_path_factory):
    """A daemon with ``flaky`` (refuses its first connection) and ``hostile`` (its
    pre-xfer hook prints HOSTILE and fails: rsync relays it on stderr)."""
    work = tmp_path_factory.mktemp("odd-mirror")
    hook = work / "hostile.sh"
    hook.write_bytes(
        b"#!/bin/sh\nprintf '%s\\n' '" + HOSTILE.replace("'", "").encode() + b"'\nexit 1\n"
    )
    hook.chmod(0o755)
    local = LocalMirror(archive, work / "daemon")
    local.add_module("flaky", archive, fail_first=1)
    local.add_module("hostile", archive, **{"pre-xfer exec": str(hook)})
    local.start()
    yield local
    local.stop()


def _sync(config: Path, out: Path, *args: str) -> dict:
    """``sync --all`` with --summary, --report and --events in ``out``; the summary."""
    result = run_cli(
        "--config", str(config), "sync", "--all",
        "--summary", str(out / "summary.json"),
        "--report", str(out / "report.html"),
        "--events", str(out / "events.jsonl"),
        *args,
    )  # fmt: skip
    assert result.code in (0, 1), result.stderr
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def reports(mirror, odd_mirror, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Each case's (report.html, summary)."""
    root = tmp_path_factory.mktemp("reports")
    cases: dict[str, tuple[Path, dict]] = {}

    def out(name: str) -> Path:
        (root / name).mkdir()
        return root / name

    def config(name: str, targets: dict[str, str]) -> Path:
        return write_config(
            root / f"{name}.toml",
            root / f"{name}-pdb",
            {target: {"url": url, "dest": target} for target, url in targets.items()},
        )

    four = {
        "mmcif": mirror.url("ftp_data", "structures/divided/mmCIF/"),
        "pdb": mirror.url("ftp_data", "structures/divided/pdb/"),
        "sifts": mirror.url("ftp_data", "sifts/"),
        "emdb": mirror.url("ftp_data", "emdb/"),
    }
    where = out("plain")
    cases["plain"] = (where / "report.html", _sync(config("plain", four), where, "--parallel", "2"))
    retried = {
        "flaky": odd_mirror.url("flaky", "sifts/"),
        "gone": "rsync://127.0.0.1:1/ftp_data/sifts/",
        "pdb": four["pdb"],
    }
    where = out("retries")
    summary = _sync(
        config("retries", retried), where, "--retry", "2", "--retry-delay", "0.2", "--parallel", "2"
    )
    cases["retries"] = (where / "report.html", summary)
    where = out("hostile")
    summary = _sync(config("hostile", {"evil": odd_mirror.url("hostile", "sifts/")}), where)
    cases["hostile"] = (where / "report.html", summary)
    where = out("split")
    split = {"mmcif": four["mmcif"], "sifts": four["sifts"]}
    summary = _sync(config("split", split), where, "--split", "2", "--parallel", "2")
    cases["split"] = (where / "report.html", summary)
    where = out("merged")
    sharded = config("merged", four)
    shards = []
    for index in (1, 2):
        shard = where / f"s{index}.json"
        ran = run_cli(
            "--config", str(sharded), "sync", "--shard", f"{index}/2", "--summary", str(shard)
        )  # fmt: skip
        assert ran.code == 0, ran.stderr
        shards.append(str(shard))
    merged = run_cli("summary", "merge", *shards, "-o", str(where / "summary.json"))
    assert merged.code == 0, merged.stderr
    shown = run_cli("summary", "show", str(where / "summary.json"), "--format", "html")
    assert shown.code == 0, shown.stderr
    (where / "report.html").write_bytes(shown.stdout)
    cases["merged"] = (where / "report.html", json.loads((where / "summary.json").read_text()))
    where = out("hundred")
    hundred = {f"t{index:03d}": four["sifts"] for index in range(100)}
    summary = _sync(config("hundred", hundred), where, "--parallel", "4")
    cases["hundred"] = (where / "report.html", summary)
    where = out("old")
    old = json.loads((root / "plain" / "summary.json").read_text())
    for result in old["results"]:  # as the summary of the release before these fields
        del result["slot"], result["attempt_log"]
    (where / "summary.json").write_text(json.dumps(old))
    shown = run_cli("summary", "show", str(where / "summary.json"), "--format", "html")
    assert shown.code == 0, shown.stderr
    (where / "report.html").write_bytes(shown.stdout)
    cases["old"] = (where / "report.html", old)
    return cases


def _jobs(summary: dict) -> list[tuple[str, int | None, dict]]:
    """(target, part, job) for every job that ran: a split target's parts, or itself."""
    jobs = []
    for result in summary["results"]:
        for part in result.get("parts") or []:
            jobs.append((result["name"], part["part"], part))
        if not result.get("parts"):
            jobs.append((result["name"], None, result))
    return jobs


def _expected_attempts(summary: dict) -> list[tuple[str, int | None, int, float, float]]:
    """(target, part, attempt, start s, end s) of every attempt, by the summary's stamps."""
    return sorted(
        (name, part, entry["attempt"],
         round(seconds_between(summary["started_at"], entry["started_at"]), 3),
         round(seconds_between(summary["started_at"], entry["finished_at"]), 3))
        for name, part, job in _jobs(summary) if job.get("attempt_log")
        for entry in job["attempt_log"]
    )  # fmt: skip


_RECT = re.compile(r'<rect class="attempt[^"]*"[^>]*>')
_ATTR = re.compile(r'data-([a-z-]+)="([^"]*)"')


def _attempt_rects(html: str) -> list[dict[str, str]]:
    return [dict(_ATTR.findall(tag)) for tag in _RECT.findall(html)]


# -- what the summary records ---------------------------------------------------------------


def test_each_job_records_its_slot_and_attempts_and_no_slot_is_shared_at_once(reports):
    _, summary = reports["plain"]
    jobs = _jobs(summary)
    assert {job["slot"] for _, _, job in jobs} <= {1, 2}
    assert all(len(job["attempt_log"]) == 1 for _, _, job in jobs)
    for first in jobs:
        for second in jobs:
            a, b = first[2], second[2]
            if a is b or a["slot"] != b["slot"]:
                continue
            # two jobs in one slot never overlap: one ended before the other started
            assert a["finished_at"] <= b["started_at"] or b["finished_at"] <= a["started_at"]


def test_retries_are_each_an_attempt_with_its_exit_code(reports):
    _, summary = reports["retries"]
    results = {result["name"]: result for result in summary["results"]}
    assert [e["exit_code"] for e in results["flaky"]["attempt_log"]] == [10, 0]
    assert results["flaky"]["status"] == "success"
    assert [e["exit_code"] for e in results["gone"]["attempt_log"]] == [10, 10, 10]
    log = results["gone"]["attempt_log"]
    assert all(a["finished_at"] <= b["started_at"] for a, b in itertools.pairwise(log))


def test_a_split_targets_parts_carry_the_timeline_fields(reports):
    _, summary = reports["split"]
    (mmcif,) = [result for result in summary["results"] if result["name"] == "mmcif"]
    assert mmcif["slot"] is None and mmcif["attempt_log"] is None
    assert [part["part"] for part in mmcif["parts"]] == [1, 2]
    assert all(part["slot"] in (1, 2) and part["attempt_log"] for part in mmcif["parts"])


# -- what the page holds --------------------------------------------------------------------


@pytest.mark.parametrize("case", ["plain", "retries", "hostile", "split", "merged", "hundred"])
def test_the_timeline_has_one_bar_per_attempt_where_the_summary_puts_it(reports, case):
    path, summary = reports[case]
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    drawn = sorted(
        (rect["target"], int(rect["part"]) if "part" in rect else None, int(rect["attempt"]),
         float(rect["start-s"]), float(rect["end-s"]))
        for rect in _attempt_rects(html)
    )  # fmt: skip
    assert drawn == _expected_attempts(summary)


def test_the_page_refers_to_nothing_outside_itself(reports):
    for path, _ in reports.values():
        html = path.read_text()
        assert not re.search(r"""<[^>]*\s(src|href)\s*=|@import|url\(""", html, re.I), path
        assert set(re.findall(r"https?://[^\s\"'<]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_hostile_stderr_is_shown_escaped(reports):
    path, summary = reports["hostile"]
    (evil,) = summary["results"]
    assert evil["status"] == "failed" and evil["exit_code"] == 10
    html = path.read_text()
    assert "<script>window" not in html and "<img" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    assert "\u202e" not in html and "evil\\u202egpj.cif" in html  # the override, as text
    assert "\x1b" not in html


def test_raw_control_characters_in_a_summary_are_shown_as_escapes(reports, tmp_path):
    """rsync escapes control characters itself; a summary file may still hold them."""
    _, summary = reports["hostile"]
    edited = json.loads(json.dumps(summary))
    edited["results"][0]["error"] = "bell\x07 esc\x1b[2J nul\x00 <b>bold</b> \u2066x\u2069"
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(edited))
    shown = run_cli("summary", "show", str(path), "--format", "html")
    assert shown.code == 0, shown.stderr
    html = shown.text
    for raw in ("\x07", "\x1b", "\x00", "\u2066", "\u2069", "<b>bold"):
        assert raw not in html
    assert "bell\\x07 esc\\x1b[2J nul\\x00 &lt;b&gt;bold&lt;/b&gt; \\u2066x\\u2069" in html


def test_a_split_target_has_a_bar_per_part_in_its_own_slot(reports):
    path, summary = reports["split"]
    rects = [r for r in _attempt_rects(path.read_text()) if r["target"] == "mmcif"]
    assert sorted(r["part"] for r in rects) == ["1", "2"]
    parts = {str(p["part"]): p for p in summary["results"][0]["parts"]}
    assert all(r["slot"] == str(parts[r["part"]]["slot"]) for r in rects)


def test_a_merged_summary_has_one_lane_group_per_shard(reports):
    path, summary = reports["merged"]
    groups = {r["group"] for r in _attempt_rects(path.read_text())}
    host = summary["merge"]["shards"][0]["host"]
    assert groups == {f"shard 1/2 on {host}", f"shard 2/2 on {host}"}
    for shard in summary["merge"]["shards"]:
        label = f"shard {shard['index']}/2 on {host}"
        names = {r["target"] for r in _attempt_rects(path.read_text()) if r["group"] == label}
        assert names == set(shard["targets"])


def test_a_hundred_target_report_stays_small(reports):
    path, summary = reports["hundred"]
    assert len(summary["results"]) == 100
    assert len(_attempt_rects(path.read_text())) == 100
    assert path.stat().st_size < 300_000


def test_an_older_summary_renders_without_a_timeline(reports):
    path, summary = reports["old"]
    html = path.read_text()
    assert 'id="no-timeline"' in html and not _attempt_rects(html)
    for result in summary["results"]:
        assert f'<tr data-name="{result["name"]}">' in html


def test_the_report_from_the_events_file_is_the_one_the_run_wrote(reports):
    """``sync --report`` records the run live; ``summary show --format html --events``
    reads the same events back from the file: one page."""
    for case in ("retries", "hostile", "split"):
        path, _ = reports[case]
        shown = run_cli(
            "summary", "show", str(path.parent / "summary.json"), "--format", "html",
            "--events", str(path.parent / "events.jsonl"),
        )  # fmt: skip
        assert shown.code == 0, shown.stderr
        assert shown.text == path.read_text(), case


def test_failed_targets_show_their_last_stderr_lines(reports):
    path, _ = reports["retries"]
    html = path.read_text()
    section = html[html.index('<section class="failure" data-name="gone">') :]
    assert "exit 10: error in socket I/O" in section
    assert "Connection refused" in section[: section.index("</section>")]


# -- refusals ------------------------------------------------------------------------------


def test_a_report_inside_a_targets_tree_is_refused_before_the_run(four_targets, tmp_path):
    inside = tmp_path / "pdb" / "sifts" / "report.html"
    result = run_cli("--config", str(four_targets), "sync", "sifts", "--report", str(inside))
    assert result.code == 2
    (line,) = result.stderr.splitlines()
    assert "--report" in line and str(inside) in line
    assert not (tmp_path / "pdb").exists()


def test_a_report_of_a_plan_is_refused(four_targets, tmp_path):
    result = run_cli(
        "--config", str(four_targets), "sync", "--all", "--plan", "--report", str(tmp_path / "r")
    )
    assert result.code == 2
    assert result.stderr == (
        "pdb-sync: error: sync: --report draws a sync's transfers; a --plan transfers nothing\n"
    )


def test_events_are_read_only_for_html_and_must_be_events(reports, tmp_path):
    path, _ = reports["plain"]
    summary = str(path.parent / "summary.json")
    result = run_cli("summary", "show", summary, "--events", str(path.parent / "events.jsonl"))
    assert result.code == 2 and "--events is read by --format html only" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ts": "2026-01-01T00:00:00Z", "type": "output"}\nnot json\n')
    result = run_cli("summary", "show", summary, "--format", "html", "--events", str(bad))
    assert result.code == 2
    assert result.stderr == (
        f"pdb-sync: error: --events {bad}: line 2 is not a pdb-sync event (JSON with a ts)\n"
    )


# -- in a real browser ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium; a machine without it fails here, loudly (CI installs it)."""
    problem = headless.missing()
    if problem:
        pytest.fail(f"the report's browser tests need {problem}")
    with headless.browser() as driver:
        yield driver


_BARS_JS = """
return Array.from(document.querySelectorAll('#timeline rect.attempt')).map(function (r) {
  var box = r.getBoundingClientRect();
  return {target: r.dataset.target, part: r.dataset.part || null,
          attempt: parseInt(r.dataset.attempt), start: parseFloat(r.dataset.startS),
          left: box.left, width: box.width, title: r.querySelector('title').textContent};
});
"""


@pytest.mark.browser
@pytest.mark.parametrize("case", ["plain", "retries", "hostile", "split", "merged", "hundred"])
def test_the_page_loads_offline_and_draws_each_attempt_in_place(reports, browser, case):
    path, summary = reports[case]
    url = headless.open_page(browser, path)
    assert headless.console_errors(browser) == []
    assert headless.requests(browser) == [url]  # the file itself and nothing else
    bars = browser.execute_script(_BARS_JS)
    expected = _expected_attempts(summary)
    assert len(bars) == len(expected)
    svg = browser.execute_script(
        "var b = document.getElementById('timeline').getBoundingClientRect();"
        "return {left: b.left, width: b.width};"
    )
    span = float(browser.find_element("id", "timeline").get_attribute("data-span-s"))
    view = LABEL_WIDTH + TIMELINE_WIDTH + 10
    for bar in bars:
        # where a bar starts on screen is its start's share of the run's span
        want = (
            svg["left"] + (LABEL_WIDTH + bar["start"] * TIMELINE_WIDTH / span) * svg["width"] / view
        )
        assert bar["left"] == pytest.approx(want, abs=1.5), bar
        assert bar["width"] > 0
        assert bar["target"] in bar["title"]
    starts = {
        (b["target"], int(b["part"]) if b["part"] else None, b["attempt"]): b["start"] for b in bars
    }
    assert starts == {(name, part, attempt): start for name, part, attempt, start, _ in expected}


@pytest.mark.browser
def test_hostile_stderr_shows_as_text_and_runs_nothing(reports, browser):
    path, _ = reports["hostile"]
    headless.open_page(browser, path)
    assert headless.console_errors(browser) == []
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.execute_script("return document.querySelectorAll('section img').length") == 0
    text = browser.find_element("css selector", "pre.stderr").text
    assert "<script>window.pwned=1</script>" in text
    assert "evil\\u202egpj.cif <img src=x onerror=window.pwned=2>" in text


@pytest.mark.browser
def test_the_targets_table_sorts_by_duration_bytes_and_status(reports, browser):
    path, summary = reports["retries"]
    headless.open_page(browser, path)

    def order() -> list[str]:
        rows = browser.find_elements("css selector", "#targets tbody tr")
        return [row.get_attribute("data-name") for row in rows]

    results = summary["results"]

    def click(header: str) -> None:
        browser.find_element("xpath", f"//table[@id='targets']//th[text()='{header}']").click()

    for header, key in (("duration", "duration_s"), ("bytes", "bytes_transferred")):
        value = {r["name"]: r[key] if r[key] is not None else -1 for r in results}
        click(header)
        assert [value[name] for name in order()] == sorted(value.values())
        click(header)
        assert [value[name] for name in order()] == sorted(value.values(), reverse=True)
    click("status")
    statuses = [{r["name"]: r["status"] for r in results}[n] for n in order()]
    assert statuses == sorted(statuses)
    assert headless.console_errors(browser) == []


def test_the_timeline_says_how_busy_the_pool_was(reports):
    path, summary = reports["plain"]
    attempts = _expected_attempts(summary)
    span = max(summary["timings"]["total_s"], max(end for *_, end in attempts))
    running = sum(end - start for *_, start, end in attempts)
    share = round(running / (summary["parallel"] * span) * 100)
    html = path.read_text()
    shown = re.search(r'<span id="busy">rsync ran in (\d+)% of the pool.s 2 slots', html)
    assert shown is not None and abs(int(shown[1]) - share) <= 1


def test_a_report_path_that_is_a_directory_is_refused_before_the_run(four_targets, tmp_path):
    result = run_cli("--config", str(four_targets), "sync", "sifts", "--report", str(tmp_path))
    assert result.code == 2
    (line,) = result.stderr.splitlines()
    assert "--report" in line and str(tmp_path) in line
    assert not (tmp_path / "pdb").exists()


# -- the pure parts ------------------------------------------------------------------------


def test_progress_samples_and_chart_steps_stay_bounded():
    from pdbsync.report.html import MAX_SAMPLES, MAX_STEPS, RunTrace, _steps

    trace = RunTrace()
    for second in range(10 * MAX_SAMPLES):
        stamp = f"2026-01-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
        trace.event({"type": "progress", "ts": stamp, "name": "big", "bytes": second * 1000})
    kept = trace.samples["big"]
    assert MAX_SAMPLES <= len(kept) <= 2 * MAX_SAMPLES
    assert kept == sorted(kept) and kept[0] == (kept[0][0], 0)
    steps = _steps(kept)
    assert len(steps) <= MAX_STEPS
    # 1000 bytes a second throughout, however the samples were thinned and merged
    assert all(rate == pytest.approx(1000) for _, _, rate in steps)
    assert steps[0][0] == kept[0][0] and steps[-1][1] == kept[-1][0]


def test_a_new_attempt_starting_from_zero_bytes_is_no_negative_rate():
    from pdbsync.report.html import _steps

    samples = [(0.0, 0), (1.0, 500), (2.0, 1000), (3.0, 0), (4.0, 200)]
    assert _steps(samples) == [(0.0, 1.0, 500.0), (1.0, 2.0, 500.0), (3.0, 4.0, 200.0)]


def test_the_report_path_expands_slurm_patterns_like_the_summarys(four_targets, tmp_path):
    """Each task of a job array writes its own page: ``%A_%a`` as in ``--summary``."""
    environ = {"SLURM_JOB_ID": "101", "SLURM_ARRAY_JOB_ID": "100", "SLURM_ARRAY_TASK_ID": "2"}
    pattern = tmp_path / "run-%A_%a.html"
    result = run_cli(
        "--config", str(four_targets), "sync", "sifts", "--shard", "1/1", "--report", str(pattern),
        environ=environ,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    page = (tmp_path / "run-100_2.html").read_text()
    assert 'data-target="sifts"' in page and not pattern.exists()


def test_a_plan_summary_has_no_html_report(four_targets, tmp_path):
    plan = tmp_path / "plan.json"
    ran = run_cli("--config", str(four_targets), "sync", "sifts", "--plan", "--summary", str(plan))
    assert ran.code == 0, ran.stderr
    result = run_cli("summary", "show", str(plan), "--format", "html")
    assert result.code == 2 and result.stdout == b""
    assert result.stderr == (
        f"pdb-sync: error: summary show {plan}: --format html shows a sync, not a plan\n"
    )


def test_only_targets_with_progress_redraws_get_a_throughput_chart(reports):
    path, _ = reports["retries"]
    charts = re.findall(r'<svg class="chart"[^>]*data-name="([^"]*)"', path.read_text())
    events = [json.loads(line) for line in (path.parent / "events.jsonl").read_text().splitlines()]
    redrawn = {e["name"] for e in events if e["type"] == "progress" and e["bytes"] > 0}
    assert "gone" not in charts  # it never connected: no redraw, no chart
    assert set(charts) == redrawn


def test_a_stopped_target_has_a_cancelled_bar_and_a_failed_one_a_failed_bar(mirror, tmp_path):
    """``--fail-fast=kill``: the failure (after the slow module's delay, so the stalled
    target's rsync is under way) stops the other target's rsync."""
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "pdb",
        {
            "stalled": {"url": mirror.url("stall", "sifts/"), "dest": "stalled"},
            "missing": {"url": mirror.url("slow", "no/such/dir/"), "dest": "missing"},
        },
    )
    out = tmp_path / "out"
    out.mkdir()
    summary = _sync(config, out, "--parallel", "2", "--fail-fast=kill")
    statuses = {result["name"]: result["status"] for result in summary["results"]}
    assert statuses == {"stalled": "cancelled", "missing": "failed"}
    rects = {rect["target"]: rect for rect in _attempt_rects((out / "report.html").read_text())}
    assert rects["stalled"]["status"] == "cancelled" and rects["missing"]["status"] == "failed"
    html = (out / "report.html").read_text()
    assert 'class="attempt s-cancelled"' in html and 'class="attempt s-failed"' in html
