"""Debian's headless Chromium driven by Selenium: for the report's browser tests
(tests/test_report_html.py) and scripts/screenshot.py.

Only Debian's ``chromium`` and ``chromium-driver`` (scripts/bootstrap.sh installs them
with apt-get) are used, by path, so Selenium never looks for or downloads a browser or
a driver of its own. :func:`missing` says what is not installed, in one line.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Flags that work as root in a container and keep the browser from calling home.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def missing() -> str | None:
    """What the browser tests need and this machine lacks (one line), or None."""
    lacking = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        lacking.append("the selenium package (pip install -e '.[test]')")
    if not lacking:
        return None
    return (
        f"{', '.join(lacking)} not installed: run scripts/bootstrap.sh "
        "(apt-get install chromium chromium-driver)"
    )


@contextmanager
def browser(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile, deleted after) whose console log and
    network requests can be read (:func:`console_errors`, :func:`requests`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pdb-sync-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver: Any, path: Path) -> str:
    """Load the file at ``path``; its URL. The logs are emptied first, so what
    :func:`console_errors` and :func:`requests` return afterwards is this page's."""
    driver.get_log("browser")
    driver.get_log("performance")
    url = Path(path).resolve().as_uri()
    driver.get(url)
    return url


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """The console entries at level SEVERE (errors, failed loads, CSP refusals)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def requests(driver: Any) -> list[str]:
    """Every URL the page asked for (the DevTools performance log), in order. Requests of
    the browser's own new-tab page (``chrome://``, before the page loaded) are left out."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        params = message["params"]
        if params.get("documentURL", "").startswith("chrome://"):
            continue
        urls.append(params["request"]["url"])
    return urls
