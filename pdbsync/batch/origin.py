"""Where a run ran: the host, its shard of the jobs, and its Slurm job and array task.

Recorded in ``run_started`` and in the summary (``host``, ``shard``, ``slurm``), so a
summary says which task of which array wrote it, and ``pdb-sync summary merge`` can
tell a missing shard from a duplicated one. Fields are always present, null when
unknown or not applicable (a run outside Slurm has ``slurm: null``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdbsync.batch.shards import Shard
    from pdbsync.batch.slurm import SlurmJob


@dataclass(frozen=True)
class RunPlace:
    """A run's origin: the host it ran on, its shard and its Slurm job, if any."""

    host: str | None = None
    shard: Shard | None = None
    slurm: SlurmJob | None = None
    #: every job name of the whole run before it was split into shards (None: unsharded);
    #: a merge compares it across shards to find targets no shard ran
    all_targets: tuple[str, ...] | None = None

    def fields(self) -> dict[str, Any]:
        """``host``, ``shard`` and ``slurm`` as the summary and ``run_started`` carry them."""
        shard = None
        if self.shard is not None:
            shard = {**self.shard.to_dict(), "all_targets": list(self.all_targets or ())}
        return {
            "host": self.host,
            "shard": shard,
            "slurm": self.slurm.to_dict() if self.slurm is not None else None,
        }


def place_fields(place: RunPlace | None) -> dict[str, Any]:
    """The summary's place fields; ``merge`` is null except in a merged summary."""
    return {**(place or RunPlace()).fields(), "merge": None}
