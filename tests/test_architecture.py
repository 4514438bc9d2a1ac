"""The package layout is the design (docs/architecture.md): the layer rule holds, the
sub-packages are plain folders, and the top-level package loads names lazily."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pdbsync"


def test_every_import_flows_down_the_layers():
    """import-linter's layers contract in pyproject.toml: a module imports only from the
    layers below its own, including imports inside functions."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_contract_names_every_package_and_top_level_module():
    """A new module outside every layer would escape the rule: each must be placed."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    placed = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    present = {
        f"pdbsync.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem not in {"__init__", "__main__"})
        or (path.is_dir() and (path / "__init__.py").exists())
    } - {"pdbsync.schemas"}
    assert present - placed == set(), "put these in a layer of pyproject.toml"
    assert placed - present == set(), "the contract names modules that do not exist"


def test_sub_package_init_files_are_empty():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name != "schemas":
            assert init.read_text() == "", f"{init} should stay empty"


def test_importing_the_package_loads_no_feature_module():
    """`pdbsync/__init__.py` loads its public names on first use, which keeps
    `pdb-sync --version` and `import pdbsync` cheap."""
    code = "import sys, pdbsync; print(sorted(m for m in sys.modules if m.startswith('pdbsync')))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['pdbsync']"


def _contract_layers() -> list[str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return [" | ".join(name.strip() for name in layer.split("|")) for layer in contract["layers"]]


def test_the_architecture_doc_shows_the_contract_s_layers():
    """docs/architecture.md copies the layer order in its first ```text block: a change
    to the contract that the map does not follow fails here."""
    import re

    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"^```text\n(.*?)^```", doc, re.M | re.S)
    assert block is not None, "docs/architecture.md has no ```text block of the layers"
    shown = [" | ".join(part.strip() for part in line.split("|")) for line in block[1].splitlines()]
    assert shown == _contract_layers()


def test_the_architecture_doc_has_a_section_for_every_package():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    packages = sorted(
        path.name
        for path in PACKAGE.iterdir()
        if path.is_dir() and (path / "__init__.py").exists() and path.name != "schemas"
    )
    missing = [name for name in packages if f"### `{name}/`" not in doc]
    assert missing == [], "docs/architecture.md: add a section for each package"


def test_only_the_html_report_imports_the_template_engine():
    """Jinja2 is the report's (pdbsync.report.html), imported inside the function that
    renders a page: every other run and command stays without it."""
    importers = sorted(
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if "jinja2" in path.read_text()
    )
    assert importers == ["pdbsync/report/html.py"]
    code = (
        "import sys; from pdbsync.cli import main; from pdbsync.report import html; "
        "print('jinja2' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
