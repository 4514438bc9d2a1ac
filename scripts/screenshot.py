"""Render a run's HTML report in Debian's headless Chromium and save a PNG (the picture in
the README).

    python scripts/screenshot.py [REPORT.html] [-o docs/report.png]

Without REPORT it runs the demo (scripts/demo.py, into a temporary directory) and takes
its ``report.html``, so the picture always shows what the current code draws.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import headless

ROOT = Path(__file__).resolve().parent.parent


#: The demo's sync, slowed down and split so the picture has parts and throughput charts.
DEMO_ARGS = ("--bwlimit", "300", "--split", "2")


def demo_report(work: Path) -> Path:
    """Run the demo into ``work`` with DEMO_ARGS; its report."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            "--workdir",
            str(work),
            "--",
            *DEMO_ARGS,
        ],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    report = work / "report.html"
    if not report.is_file():
        raise SystemExit(f"screenshot: the demo wrote no {report}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", type=Path, help="an HTML report (default: the demo's)")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args()
    problem = headless.missing()
    if problem:
        print(f"screenshot: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pdb-sync-shot-") as temp:
        report = args.report or demo_report(Path(temp) / "demo")
        with headless.browser(args.width, 900) as driver:
            headless.open_page(driver, report)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            # the whole page, not the window: a viewport as tall as the page
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": args.width,
                    "height": int(height),
                    "deviceScaleFactor": 1,
                    "mobile": False,
                },
            )
            args.output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.output))
    print(f"screenshot: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
