"""pdb-sync: keep a local Protein Data Bank mirror in sync with parallel rsync transfers.

The library API (docs/api.md)::

    import pdbsync

    mirror = pdbsync.Mirror("config.toml")
    result = mirror.sync(["mmcif"], parallel=4)
    print(result["mmcif"].status, result.ok)

Names are loaded on first use, so ``pdb-sync --version`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "Mirror": "pdbsync.session",
    "RunOptions": "pdbsync.api",
    "Status": "pdbsync.report.summary",
    "EventSink": "pdbsync.run.collector",
    "CancelFlag": "pdbsync.run.collector",
    "TargetsFailed": "pdbsync.errors",
    "MAX_PARALLEL": "pdbsync.numbers",
    "sync": "pdbsync.api",
    "plan": "pdbsync.api",
    "prepare": "pdbsync.api",
    "load_config": "pdbsync.api",
    "Config": "pdbsync.config.load",
    "Job": "pdbsync.run.jobs",
    "Summary": "pdbsync.report.summary",
    "SyncResult": "pdbsync.report.summary",
    "PlanSummary": "pdbsync.run.plan_mode",
    "ExitCode": "pdbsync.errors",
    "PdbSyncError": "pdbsync.errors",
    "ConfigError": "pdbsync.errors",
    "UsageError": "pdbsync.errors",
    "EnvironmentProblem": "pdbsync.errors",
}
__all__ = [
    "MAX_PARALLEL",
    "CancelFlag",
    "Config",
    "ConfigError",
    "EnvironmentProblem",
    "EventSink",
    "ExitCode",
    "Job",
    "Mirror",
    "PdbSyncError",
    "PlanSummary",
    "RunOptions",
    "Status",
    "Summary",
    "SyncResult",
    "TargetsFailed",
    "UsageError",
    "__version__",
    "load_config",
    "plan",
    "prepare",
    "sync",
]

if TYPE_CHECKING:
    from pdbsync.api import RunOptions, load_config, plan, prepare, sync
    from pdbsync.config.load import Config
    from pdbsync.errors import (
        ConfigError,
        EnvironmentProblem,
        ExitCode,
        PdbSyncError,
        TargetsFailed,
        UsageError,
    )
    from pdbsync.numbers import MAX_PARALLEL
    from pdbsync.report.summary import Status, Summary, SyncResult
    from pdbsync.run.collector import CancelFlag, EventSink
    from pdbsync.run.jobs import Job
    from pdbsync.run.plan_mode import PlanSummary
    from pdbsync.session import Mirror


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pdbsync' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
