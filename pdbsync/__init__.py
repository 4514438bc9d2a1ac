"""pdb-sync: keep a local Protein Data Bank mirror in sync with parallel rsync transfers.

The library API (docs/api.md)::

    import threading, pdbsync

    stop = threading.Event()
    summary = pdbsync.sync("config.toml", ["mmcif"], parallel=4, cancel=stop)
    print(summary.exit_code, [r.status for r in summary.results])

Names are loaded on first use, so ``pdb-sync --version`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
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
    "Config",
    "ConfigError",
    "EnvironmentProblem",
    "ExitCode",
    "Job",
    "PdbSyncError",
    "PlanSummary",
    "Summary",
    "SyncResult",
    "UsageError",
    "__version__",
    "load_config",
    "plan",
    "prepare",
    "sync",
]

if TYPE_CHECKING:
    from pdbsync.api import load_config, plan, prepare, sync
    from pdbsync.config.load import Config
    from pdbsync.errors import ConfigError, EnvironmentProblem, ExitCode, PdbSyncError, UsageError
    from pdbsync.report.summary import Summary, SyncResult
    from pdbsync.run.jobs import Job
    from pdbsync.run.plan_mode import PlanSummary


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pdbsync' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
