"""The wheel works outside the checkout: build it, install it in a fresh venv, run it.

What ``pipx install`` does (a venv of its own, ``pip install`` the wheel), done offline:
the wheel is built with ``python -m build --no-isolation`` (no download of a build
backend) and installed with ``--no-index --no-deps``; its dependencies are lent from
this interpreter's site-packages by a ``.pth`` line. A ``.pth`` file in a directory
added that way is not processed, so this checkout's editable install cannot leak in;
the test checks that ``pdbsync`` is imported from the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from pdbsync import __version__

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(600)


def _run(*argv: str | Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(venv, an empty working directory outside the checkout)."""
    pytest.importorskip("build", reason="pip install -e '.[test]' installs build")
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):  # the files a commit would hold, in a clean copy
        path = ROOT / name.decode()
        if path.is_file():
            (source / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name.decode())
    dist = work / "dist"
    built = _run(
        sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, source,
        cwd=work,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")
    assert wheel.name.startswith(f"pdb_sync-{__version__}-")  # the version's one source
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {
        "pdbsync/schemas/config.schema.json",
        "pdbsync/schemas/summary.schema.json",
        "pdbsync/report/templates/report.html.j2",
    } <= set(names)
    venv = work / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=work)
    assert made.returncode == 0, made.stderr
    pip = _run(
        venv / "bin/python", "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", wheel,
        cwd=work,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    site = _run(
        venv / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        cwd=work,
    ).stdout.strip()  # fmt: skip
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "_lent_dependencies.pth").write_text("\n".join(sorted(lent)) + "\n")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return venv, elsewhere


def _clean_env(venv: Path, **extra: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PDB_SYNC_CONFIG", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    return {**env, **extra}


def test_the_installed_command_and_module_report_the_version(installed):
    venv, elsewhere = installed
    env = _clean_env(venv)
    for argv in (
        (venv / "bin/pdb-sync", "--version"),
        (venv / "bin/python", "-m", "pdbsync", "--version"),
    ):
        out = _run(*argv, cwd=elsewhere, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"pdb-sync {__version__}"
    where = _run(
        venv / "bin/python", "-c", "import pdbsync; print(pdbsync.__file__)", cwd=elsewhere, env=env
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout


def test_config_validate_uses_the_packaged_schema(installed, tmp_path):
    venv, elsewhere = installed
    good = tmp_path / "good.toml"
    good.write_text(
        '[paths]\npdb_dir = "/data/pdb"\n\n[sync.custom.mmcif]\n'
        'url = "rsync://127.0.0.1:1/ftp_data/x/"\ndest = "x"\n'
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[paths]\npdb_dir = "/data/pdb"\n\n[sync.custom.mmcif]\nurl = 5\n')
    env = _clean_env(venv)
    ok = _run(
        venv / "bin/pdb-sync",
        "--config",
        good,
        "config",
        "validate",
        "--json",
        cwd=elsewhere,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["valid"] is True
    refused = _run(
        venv / "bin/pdb-sync", "--config", bad, "config", "validate", cwd=elsewhere, env=env
    )
    assert refused.returncode == 2 and "url" in refused.stderr


def test_completion_and_summary_show_work_from_the_wheel(installed, tmp_path):
    venv, elsewhere = installed
    env = _clean_env(venv)
    completion = _run(venv / "bin/pdb-sync", "completion", "fish", cwd=elsewhere, env=env)
    assert completion.returncode == 0 and "complete --command pdb-sync" in completion.stdout
    not_summary = tmp_path / "x.json"
    not_summary.write_text('{"v": 1}')
    shown = _run(venv / "bin/pdb-sync", "summary", "show", not_summary, cwd=elsewhere, env=env)
    assert shown.returncode == 2 and "schemas/summary.schema.json" in shown.stderr


def test_summary_show_html_renders_with_the_packaged_template(installed, tmp_path):
    """The report's Jinja2 template is package data: a wheel without it could not render."""
    from pdbsync.report.summary import Summary, SyncResult

    venv, elsewhere = installed
    result = SyncResult("mmcif", "rsync://127.0.0.1:1/x/", "/data/x", "success", exit_code=0)
    stamp = "2026-01-01T00:00:00.000Z"
    summary = Summary([result], 1, stamp, stamp, 0.0).to_dict()
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    shown = _run(
        venv / "bin/pdb-sync", "summary", "show", path, "--format", "html",
        cwd=elsewhere, env=_clean_env(venv),
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("<!DOCTYPE html>") and 'data-name="mmcif"' in shown.stdout
