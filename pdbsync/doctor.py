"""``env doctor``: can this machine run the configured syncs, and safely?

Each check is ``ok``, ``warn`` or ``fail`` with one line of reason and, when it is not
ok, one line of what to do. The checks never stop at the first problem (a new machine
usually has several) and never change anything but a probe file in the state
directory, written and removed again. Network checks are bounded like ``mirrors test``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pdbsync import __version__, outputs
from pdbsync.config.load import Config, check_file, find_config, resolve_dests
from pdbsync.config.options import parse_size
from pdbsync.errors import ConfigError, PdbSyncError
from pdbsync.mirrors import probe
from pdbsync.mirrors import registry as mirrors
from pdbsync.rsync import program as rsync_lang

OK, WARN, FAIL = "ok", "warn", "fail"
#: Below this much free space in pdb_dir's file system, warn (``--min-free``,
#: ``[doctor] min_free``). The whole archive is over a terabyte; one format is tens of GB.
DEFAULT_MIN_FREE = 10 * 1024**3
#: The packages pdb-sync needs at run time (pyproject.toml's dependencies).
PACKAGES = ("orjson", "jsonschema", "tomlkit", "loguru")
_PROBE_FILE = ".pdb-sync-doctor"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str  # ok | warn | fail
    reason: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exit_code(checks: list[Check], strict: bool = False) -> int:
    """1 when a check failed (or, with ``strict``, warned), else 0."""
    bad = {FAIL, WARN} if strict else {FAIL}
    return 1 if any(check.status in bad for check in checks) else 0


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"


def check_python() -> Check:
    """The interpreter (pdb-sync does not import on one older than 3.11, so it is ok)."""
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", OK, f"Python {version} ({sys.executable})")


def check_packages() -> Check:
    found, missing = [f"pdb-sync {__version__}"], []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return Check(
            "packages",
            FAIL,
            f"missing: {', '.join(missing)}",
            "reinstall pdb-sync: pip install -e . (or pip install pdb-sync)",
        )
    return Check("packages", OK, ", ".join(found))


def check_rsync(config: Config | None, rsync: str = "rsync") -> Check:
    """Found, new enough for pdb-sync (3.1.0), and past the CVE floor (3.4.0)."""
    try:
        info = rsync_lang.inspect_rsync(rsync)
    except PdbSyncError as exc:
        return Check("rsync", FAIL, exc.message, "install rsync 3.4.0 or newer")
    patched = config.rsync_patched if config is not None else None
    problem = rsync_lang.vulnerability(info.version, patched)
    if problem is not None:
        return Check("rsync", FAIL, f"{info.path}: {problem}", rsync_lang.UPGRADE_HELP)
    if info.version < rsync_lang.SAFE_RSYNC_VERSION:
        return Check(
            "rsync",
            OK,
            f"rsync {info.version_text} at {info.path}, acknowledged as patched "
            f"([sync] rsync_patched = {patched!r})",
        )
    return Check("rsync", OK, f"rsync {info.version_text} at {info.path} ({info.banner})")


def check_config(path: Path, environ: Mapping[str, str]) -> tuple[list[Check], Config | None]:
    """Found, valid (every problem counted, the first shown), and Rust-only keys."""
    if not path.exists():
        return [
            Check(
                "config",
                FAIL,
                f"no config at {path}",
                "create one with 'pdb-sync config init', or point to one with --config "
                "or PDB_SYNC_CONFIG",
            )
        ], None
    result = check_file(path, environ)
    problems = result.problems
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return [
            Check(
                "config",
                FAIL,
                problems[0] + more,
                "fix it; 'pdb-sync config validate' lists every problem",
            )
        ], None
    config = result.config
    assert config is not None  # no problems: check_file loaded it
    checks = [Check("config", OK, f"{path}: valid, {len(config.targets)} target(s)")]
    for line in config.warnings:
        checks.append(Check("config keys", WARN, line, "run 'pdb-sync config migrate'"))
    return checks, config


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def writable(path: Path) -> tuple[bool, str]:
    """Whether ``path`` (or, if missing, the directory that would hold it) is writable,
    and a line saying so; ``env doctor`` and ``config validate`` both judge pdb_dir by it.

    By ``os.access``: the user's permissions, and a read-only mount even for root.
    """
    if path.exists():
        if not path.is_dir():
            return False, f"{path} is not a directory"
        if os.access(path, os.W_OK | os.X_OK):
            return True, f"{path} is writable"
        return False, f"{path} is not writable by this user"
    parent = _existing_ancestor(path)
    if not parent.is_dir():
        return False, f"{path} cannot be created: {parent} is not a directory"
    if os.access(parent, os.W_OK | os.X_OK):
        return True, f"{path} does not exist yet; sync creates it (in {parent})"
    return False, f"{path} does not exist and {parent} is not writable"


def check_pdb_dir(
    config: Config, cli_pdb_dir: str | None, environ: Mapping[str, str], min_free: int
) -> tuple[list[Check], Path | None]:
    from pdbsync.config.load import resolve_pdb_dir

    try:
        pdb_dir = resolve_pdb_dir(config, cli_pdb_dir, environ)
    except ConfigError as exc:
        return [Check("pdb_dir", FAIL, exc.message, "set [paths] pdb_dir")], None
    usable, reason = writable(pdb_dir)
    checks = [
        Check(
            "pdb_dir",
            OK if usable else FAIL,
            reason,
            None if usable else "create it or give this user write access (or use --pdb-dir)",
        )
    ]
    usage = shutil.disk_usage(_existing_ancestor(pdb_dir))
    space = f"{_gib(usage.free)} free of {_gib(usage.total)} (threshold {_gib(min_free)})"
    if usage.free < min_free:
        checks.append(
            Check(
                "free space",
                WARN,
                space,
                "free space or move pdb_dir; set the threshold with --min-free or "
                "[doctor] min_free",
            )
        )
    else:
        checks.append(Check("free space", OK, space))
    return checks, pdb_dir


def check_dests(config: Config, pdb_dir: Path) -> list[Check]:
    """Every target's dest: inside pdb_dir where it resolves, and writable."""
    checked = resolve_dests(pdb_dir, {t.name: t.dest for t in config.targets.values()})
    checks = [
        Check("dests", FAIL, problem, "fix the dest or the symlink") for problem in checked.problems
    ]
    for target in config.targets.values():
        usable, reason = writable(pdb_dir / target.dest)
        checks.append(
            Check(
                f"dest {target.name}",
                OK if usable else FAIL,
                reason,
                None if usable else "create it or give this user write access",
            )
        )
    return checks


def check_mirrors(
    config: Config, measure: Callable[..., list[probe.ProbeResult]] = probe.probe_all
) -> list[Check]:
    """Each distinct daemon (host:port) the targets use, probed at once and bounded.

    An ``auto`` target counts on every mirror of the registry; one of those that is
    down is a warning (auto chooses among the rest), unless none answers.
    """
    fixed: dict[tuple[str, int], str] = {}
    candidates: dict[tuple[str, int], str] = {}
    for target in config.targets.values():
        if target.mirror == mirrors.AUTO:
            for mirror in config.mirrors.values():
                candidates.setdefault(mirrors.endpoint(mirror.url), mirror.url)
        else:
            fixed.setdefault(mirrors.endpoint(target.url), target.url)
    endpoints = {**candidates, **fixed}
    if not endpoints:
        return []
    results = measure([(f"{h}:{p}", url) for (h, p), url in endpoints.items()])
    checks = []
    for (host, port), result in zip(endpoints, results, strict=True):
        name = f"mirror {host}:{port}"
        if result.reachable:
            checks.append(
                Check(name, OK, f"rsync daemon, protocol {result.protocol}, {result.latency_ms} ms")
            )
            continue
        needed = (host, port) in fixed
        checks.append(
            Check(
                name,
                FAIL if needed else WARN,
                f"unreachable: {result.error}",
                "check the network and firewall (rsync daemons use TCP port "
                f"{port}); 'pdb-sync mirrors test' tries every mirror",
            )
        )
    answered = {key for key, r in zip(endpoints, results, strict=True) if r.reachable}
    if candidates and not answered & set(candidates):
        checks.append(
            Check("mirror auto", FAIL, "no mirror answers", "check the network, or name a mirror")
        )
    return checks


def check_state_dir(environ: Mapping[str, str]) -> Check:
    """The state directory takes a file (history, the auto choice's cache)."""
    from pdbsync.store.history import state_dir

    directory = state_dir(environ)
    probe_file = directory / _PROBE_FILE
    try:
        outputs.write_file(probe_file, b"pdb-sync env doctor\n", error=ConfigError)
    except ConfigError as exc:
        return Check(
            "state dir",
            FAIL,
            exc.message,
            "set PDB_SYNC_STATE_DIR (or XDG_STATE_HOME) to a writable directory",
        )
    probe_file.unlink(missing_ok=True)
    return Check("state dir", OK, f"{directory} is writable")


def run_checks(
    config_arg: str | None,
    environ: Mapping[str, str],
    cli_pdb_dir: str | None = None,
    min_free: int | None = None,
    measure: Callable[..., list[probe.ProbeResult]] = probe.probe_all,
) -> list[Check]:
    """Every check, in the order a person fixes things."""
    checks = [check_python(), check_packages()]
    config_checks, config = check_config(find_config(config_arg, environ), environ)
    checks.append(check_rsync(config))
    checks += config_checks
    if config is not None:
        threshold = min_free
        if threshold is None and config.min_free is not None:
            threshold = parse_size(config.min_free)
        pdb_checks, pdb_dir = check_pdb_dir(
            config, cli_pdb_dir, environ, DEFAULT_MIN_FREE if threshold is None else threshold
        )
        checks += pdb_checks
        if pdb_dir is not None:
            checks += check_dests(config, pdb_dir)
        checks += check_mirrors(config, measure)
    checks.append(check_state_dir(environ))
    return checks
