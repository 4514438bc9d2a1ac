"""Live progress from a real, bandwidth-limited rsync: events, terminal, pipe.

The terminal test runs the real ``pdb-sync`` under a pseudo-terminal (pexpect) and
replays what it wrote the way a terminal would, so "the live line really redraws and
leaves nothing behind" is checked on the final screen, not on our own intentions.
"""

from __future__ import annotations

import io
import itertools
import re
import shutil
import subprocess
import sys
from datetime import datetime

import orjson
import pexpect
from conftest import assert_valid_events, write_config

from pdbsync.report.render import FILE_PROGRESS_SECONDS, JsonRenderer
from pdbsync.rsync.argv import RsyncArgv
from pdbsync.run.driver import RunSettings, run_sync
from pdbsync.run.jobs import Job
from pdbsync.run.worker import PROGRESS_INTERVAL

COLUMNS = 100
_LIVE_FRAME = re.compile(r"\r(\[t[01]\] (\d+)% [^\r\n]*)")


def _two_slow_targets(throttled_mirror, tmp_path):
    return write_config(
        tmp_path / "config.toml",
        tmp_path / "pdb",
        {
            "t0": {
                "url": throttled_mirror.url("ftp_data", "structures/divided/mmCIF/"),
                "dest": "a",
            },
            "t1": {"url": throttled_mirror.url("ftp_data", "structures/divided/pdb/"), "dest": "b"},
        },
    )


def _screen(output: str) -> list[str]:
    """What a terminal shows after ``output``: \\r returns to column 0, \\n starts a line."""
    lines: list[list[str]] = [[]]
    column = 0
    for char in output:
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append([])
            column = 0
        else:
            line = lines[-1]
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
    return ["".join(line).rstrip() for line in lines]


def test_bwlimit_gives_several_throttled_progress_events_with_monotonic_bytes(
    mirror, archive, tmp_path
):
    url = mirror.url("ftp_data", "structures/divided/mmCIF/")
    dest = tmp_path / "mmcif"
    rsync = shutil.which("rsync") or "rsync"
    command = RsyncArgv(rsync, url, str(dest), ("-a", "--bwlimit=16"))
    job = Job(name="slow", url=url, dest=dest, command=command)
    out = io.BytesIO()
    summary = run_sync([job], RunSettings(), JsonRenderer(out))
    assert int(summary.exit_code) == 0
    events = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert_valid_events(events)
    progress = [e for e in events if e["type"] == "progress"]
    assert len(progress) >= 5, f"only {len(progress)} progress events"
    assert len({e["percent"] for e in progress}) >= 4
    assert all(a["bytes"] <= b["bytes"] for a, b in itertools.pairwise(progress))
    total = sum(p.stat().st_size for p in (archive / "structures/divided/mmCIF").rglob("*.gz"))
    assert progress[-1]["bytes"] == total and progress[-1]["percent"] == 100
    times = [datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) for e in progress[:-1]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= PROGRESS_INTERVAL - 0.05, "progress events were not throttled"
    # at 100% rsync's time column is the time the transfer took, not an estimate
    assert re.fullmatch(r"100% \S+/s in \d+:\d\d:\d\d \(.*\)", progress[-1]["message"])
    assert all(" eta " in e["message"] for e in progress if e["percent"] < 100)


def test_terminal_gets_one_live_line_that_redraws_in_place(throttled_mirror, tmp_path):
    config = _two_slow_targets(throttled_mirror, tmp_path)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pdbsync", "--config", str(config), "sync", "--all", "--parallel", "2"],
        dimensions=(24, COLUMNS),
        timeout=60,
        encoding="utf-8",
        env={"PATH": "/usr/bin:/bin", "TERM": "xterm"},
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    output = child.before
    frames = _LIVE_FRAME.findall(output)
    assert len(frames) >= 4, f"live line drawn {len(frames)} times"
    assert len({percent for _, percent in frames}) >= 3, "the live line never changed"
    assert any(" | " in frame for frame, _ in frames), "no combined line for two targets"
    assert all(len(frame) <= COLUMNS - 1 for frame, _ in frames), "a frame would wrap"
    assert "\x1b" not in output
    screen = _screen(output)
    assert not [line for line in screen if " eta " in line], "a live line was left behind"
    assert any(line.startswith("[t0] Completed in") for line in screen)
    assert any(line.startswith("[t1] Completed in") for line in screen)
    assert "All syncs completed successfully." in screen
    body = screen[: screen.index("=== Sync Summary ===")]
    assert all(line.startswith(("[t0]", "[t1]", "Syncing")) or not line for line in body)


def test_pipe_gets_plain_throttled_progress_lines_and_no_control_codes(throttled_mirror, tmp_path):
    config = _two_slow_targets(throttled_mirror, tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pdbsync",
            "--config",
            str(config),
            "sync",
            "--all",
            "--parallel",
            "2",
        ],
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TERM": "xterm"},
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    assert "\x1b" not in text and "\r" not in text
    progress = re.findall(r"^\[(t[01])\] (\d+)% \S+/s (?:eta|in) \d+:\d\d:\d\d", text, re.M)
    assert ("t0", "100") in progress and ("t1", "100") in progress
    for name in ("t0", "t1"):
        # the first redraw, one per FILE_PROGRESS_SECONDS after it, and the final state
        seconds = float(re.search(rf"^\[{name}\] Completed in ([\d.]+)s", text, re.M)[1])
        lines = len([p for p in progress if p[0] == name])
        assert 2 <= lines <= 2 + int(seconds / FILE_PROGRESS_SECONDS), (name, lines, seconds)
