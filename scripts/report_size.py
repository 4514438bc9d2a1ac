"""How big the HTML report is and how long it takes to render, for docs/report.md.

    python scripts/report_size.py [--repeat 5]

Two runs against the built-in local mirror: the demo's (four targets, ``--parallel 3``)
and 100 targets at ``--parallel 4``. For each: the report's and the summary's size, the
bars drawn, the time to render the page from the saved summary and events
(``report_html``, in this process), of the whole ``pdb-sync summary show --format
html`` command, and for headless chromium to load the page (each the best of
--repeat). Timing lives here, not in the tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo import TARGETS
from local_mirror import LocalMirror
from mini_pdb import generate


def _config(path: Path, targets: dict[str, str], pdb: Path) -> Path:
    lines = ["[paths]", f'pdb_dir = "{pdb}"', ""]
    for name, url in targets.items():
        lines += [f"[sync.custom.{name}]", f'url = "{url}"', f'dest = "{name}"', ""]
    path.write_text("\n".join(lines))
    return path


def _run(work: Path, config: Path, parallel: int) -> Path:
    subprocess.run(
        [
            sys.executable, "-m", "pdbsync", "--config", str(config), "sync", "--all",
            "--parallel", str(parallel), "--summary", str(work / "summary.json"),
            "--events", str(work / "events.jsonl"), "--report", str(work / "report.html"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return work


def _measure(label: str, work: Path, repeat: int) -> str:
    from pdbsync.report.html import read_event_logs, report_html

    summary = json.loads((work / "summary.json").read_text())
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        report_html(summary, read_event_logs([work / "events.jsonl"], summary))
        best = min(best, time.perf_counter() - started)
    command = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pdbsync", "summary", "show", str(work / "summary.json"),
             "--format", "html", "--events", str(work / "events.jsonl")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        command = min(command, time.perf_counter() - started)
    html = (work / "report.html").read_text()
    bars = html.count('<rect class="attempt')
    shown = _browser_ms(work / "report.html", repeat)
    return (
        f"| {label} | {len(summary['results'])} | {bars} | "
        f"{(work / 'report.html').stat().st_size / 1000:.1f} kB | "
        f"{(work / 'summary.json').stat().st_size / 1000:.1f} kB | "
        f"{best * 1000:.0f} ms in-process, {command * 1000:.0f} ms for the command | {shown} |"
    )


def _browser_ms(path: Path, repeat: int) -> str:
    """How long headless chromium takes to load and lay out the page (Navigation Timing:
    navigation start to the load event's end), best of ``repeat``."""
    import headless

    if headless.missing():
        return "(no chromium)"
    best = float("inf")
    with headless.browser() as driver:
        for _ in range(repeat):
            headless.open_page(driver, path)
            timing = driver.execute_script(
                "var t = performance.getEntriesByType('navigation')[0];"
                "return t.loadEventEnd - t.startTime;"
            )
            best = min(best, timing)
    return f"{best:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pdb-sync-report-size-") as temp:
        root = Path(temp)
        generate(root / "archive", entries=200)
        with LocalMirror(root / "archive", root / "mirror") as mirror:
            demo = {
                name: mirror.url("ftp_data", source) for name, (source, _, _) in TARGETS.items()
            }
            (root / "demo").mkdir()
            _run(root / "demo", _config(root / "demo.toml", demo, root / "demo-pdb"), 3)
            hundred = {f"t{i:03d}": mirror.url("ftp_data", "sifts/") for i in range(100)}
            (root / "hundred").mkdir()
            _run(root / "hundred", _config(root / "hundred.toml", hundred, root / "h-pdb"), 4)
        print(
            "| run | targets | attempts drawn | report | summary | rendering | opening in chromium"
            " |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print(_measure("demo (`--parallel 3`)", root / "demo", args.repeat))
        print(_measure("100 targets (`--parallel 4`)", root / "hundred", args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
