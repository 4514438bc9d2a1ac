"""What ``sync`` settles after the config is read and before any job is planned.

Three things, each independent of argparse: is this rsync safe to point at public
servers (the CVE-2024-12084..12088 floor), which mirror does an ``auto`` target use,
and what should the operator be told on the way (``warning`` events). Nothing here
prints; ``api.sync`` and ``api.plan`` run it for every caller and send the warnings as
events before the run starts (the command line also shows them on stderr).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pdbsync.config.load import Config, with_mirror_choice
from pdbsync.errors import EnvironmentProblem
from pdbsync.events import make_event
from pdbsync.mirrors import registry as mirrors
from pdbsync.rsync import program as rsync

if TYPE_CHECKING:  # probing mirrors (threads, sockets) is imported only for mirror = auto
    from pdbsync.mirrors import choice as mirror_choice


@dataclass(frozen=True)
class Preflight:
    """The rsync to run, the config with ``auto`` resolved, and what to warn about."""

    rsync: rsync.RsyncInfo
    config: Config  # ``auto`` targets resolved; ``mirror_order`` set when there were any
    warnings: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]  # for people, on stderr (which mirror auto chose, and why)


def check_rsync_safety(
    info: rsync.RsyncInfo, config: Config, allow_vulnerable: bool
) -> dict[str, Any] | None:
    """The ``warning`` event for a vulnerable rsync, or None when it is safe.

    With ``[sync] require_safe_rsync = true`` a vulnerable rsync is refused instead
    (EnvironmentProblem, exit 2, nothing runs) unless ``allow_vulnerable``
    (``--allow-vulnerable-rsync``).
    """
    problem = rsync.vulnerability(info.version, config.rsync_patched)
    if problem is None:
        return None
    if config.require_safe_rsync and not allow_vulnerable:
        raise EnvironmentProblem(
            f"{info.path}: {problem}; refused because {config.path} sets [sync] "
            f"require_safe_rsync = true; {rsync.UPGRADE_HELP}, or run with "
            "--allow-vulnerable-rsync"
        )
    return make_event(
        "warning",
        None,
        f"{info.path}: {problem}; {rsync.UPGRADE_HELP}",
        code="vulnerable_rsync",
        cves=[cve for cve, _what in rsync.RSYNC_CVES],
        rsync_version=info.version_text,
    )


def uses_auto(config: Config, names: Sequence[str]) -> bool:
    return any(config.targets[name].mirror == mirrors.AUTO for name in names)


def prepare(
    config: Config,
    names: Sequence[str],
    environ: Mapping[str, str],
    allow_vulnerable: bool = False,
    rsync_name: str = "rsync",
) -> Preflight:
    """Check rsync (found, new enough, safe), resolve ``auto``, collect the warnings."""
    info = rsync.inspect_rsync(rsync_name)
    warnings = [
        make_event("warning", None, line, code="ignored_config_keys") for line in config.warnings
    ]
    unsafe = check_rsync_safety(info, config, allow_vulnerable)
    if unsafe is not None:
        warnings.append(unsafe)
    notes = []
    config, choice = resolve_auto(config, names, environ)
    if choice is not None:
        notes.append(f"mirror auto: using {choice.chosen} ({choice.reason})")
        if choice.cache_problem:
            warnings.append(
                make_event(
                    "warning",
                    None,
                    f"mirror auto: the choice could not be cached: {choice.cache_problem}",
                    code="mirror_cache",
                )
            )
    return Preflight(info, config, tuple(warnings), tuple(notes))


def resolve_auto(
    config: Config, names: Sequence[str], environ: Mapping[str, str]
) -> tuple[Config, mirror_choice.Choice | None]:
    """``config`` with its ``auto`` targets on the chosen mirror (and the choice), or
    unchanged (and None) when none of ``names`` uses ``auto``. Probes, or reads the
    cache; EnvironmentProblem when no mirror is reachable."""
    if not uses_auto(config, names):
        return config, None
    selection = config.mirror_selection
    from pdbsync.mirrors import choice as mirror_choice

    choice = mirror_choice.choose(
        config.mirrors,
        environ,
        ttl=selection.get("latency_cache_ttl", mirror_choice.DEFAULT_TTL),
        preferred_region=selection.get("preferred_region"),
    )
    return with_mirror_choice(config, choice.order, choice.reason), choice
