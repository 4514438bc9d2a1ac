"""``--shard I/N``: this process runs its share of the jobs, and every job is in exactly
one share.

A job array runs N copies of the same command; each must pick its jobs alone, without
talking to the others, and together they must cover every job once. So the split is a
pure function of what every task sees alike: the job names and their expected sizes.
Jobs are dealt largest first to the shard with the least expected work so far (ties:
the lower shard), which keeps the shards' sizes within one job of each other; the
expected size of a job is its source's size at its last successful sync (rsync's
"Total file size", pdbsync.store.history), else that of its last plan; a job with no history
weighs the mean of those that have one (1 when none has), and equal weights are dealt
in the order of a stable hash of the name, not of the config, so a target added to the
config does not reshuffle every other one.

Every shard must split by the same numbers, but shards record their runs in the
history as they finish, and a shard that starts after another finished would see
other numbers. So only runs that were not sharded count: a whole sync, or a ``sync
--plan`` (which records each target's size and changes nothing). Until there is one,
the split is by the stable hash alone; running ``pdb-sync sync --plan --all`` now and
then keeps the weights current. All shards must read the same state directory (a
shared home, or ``PDB_SYNC_STATE_DIR``). ``pdb-sync summary merge`` reports any target
in no shard or in two, should the shards still have disagreed.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pdbsync.batch.slurm import MAX_ARRAY_SIZE, SlurmJob
from pdbsync.digest import blake2b
from pdbsync.errors import UsageError
from pdbsync.numbers import whole

#: As many shards as a Slurm array can have tasks.
MAX_SHARDS = MAX_ARRAY_SIZE

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Share ``index`` (1..count) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count}


def parse_shard(text: str) -> Shard:
    """``I/N`` with 1 <= I <= N <= :data:`MAX_SHARDS`, ASCII digits (pdbsync.numbers);
    UsageError naming ``--shard`` otherwise."""
    index_text, slash, count_text = text.partition("/")
    try:
        if not slash:
            raise ValueError
        index, count = whole(index_text), whole(count_text)
    except ValueError:
        raise UsageError(
            f"--shard: expected I/N (e.g. 2/4: the second of four), got {text!r}"
        ) from None
    if count > MAX_SHARDS:
        raise UsageError(f"--shard {text}: N must be at most {MAX_SHARDS} (a Slurm array's)")
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: I must be between 1 and N, and N at least 1")
    return Shard(index, count)


def shard_of_task(slurm: SlurmJob | None) -> Shard | None:
    """This array task's shard: task ids MIN, MIN+STEP, ... are shards 1, 2, ... of COUNT.

    None outside an array. COUNT is ``SLURM_ARRAY_TASK_COUNT``, else derived from
    ``_MIN``, ``_MAX`` and ``_STEP``; with neither, UsageError: running unsharded in
    every task would run every target once per task. UsageError too when the ids cannot
    be numbered that way (an ``--array=1,5,9`` list with uneven gaps): then give
    ``--shard`` per task.
    """
    if slurm is None or not slurm.in_array:
        return None
    task = slurm.array_task_id
    assert task is not None
    count = slurm.array_task_count or _derived_count(slurm)
    first = slurm.array_task_min if slurm.array_task_min is not None else 0
    step = slurm.array_task_step or 1
    offset, remainder = divmod(task - first, step)
    if remainder or not 0 <= offset < count:
        raise UsageError(
            f"array task {task} (min {first}, step {step}, count {count}) "
            "cannot be numbered as a shard: use an evenly spaced --array, or give --shard I/N"
        )
    return Shard(offset + 1, count)


def _derived_count(slurm: SlurmJob) -> int:
    """The number of tasks from ``SLURM_ARRAY_TASK_MIN``/``_MAX``/``_STEP`` (all three:
    a missing step could be 2, and guessing 1 would leave every other shard unrun)."""
    low, high, step = slurm.array_task_min, slurm.array_task_max, slurm.array_task_step
    if low is None or high is None or step is None:
        missing = [
            name for name, value in (("MIN", low), ("MAX", high), ("STEP", step)) if value is None
        ]
        raise UsageError(
            f"SLURM_ARRAY_TASK_ID={slurm.array_task_id} is set but SLURM_ARRAY_TASK_COUNT "
            f"is not, nor SLURM_ARRAY_TASK_{'/'.join(missing)} to derive it from: this "
            "task's share of the targets is unknown; give --shard I/N (or --shard none)"
        )
    if high < low:
        raise UsageError(
            f"SLURM_ARRAY_TASK_MAX={high} is below SLURM_ARRAY_TASK_MIN={low}: this task's "
            "share of the targets is unknown; give --shard I/N"
        )
    return (high - low) // step + 1


def resolve_shard(given: str | None, slurm: SlurmJob | None) -> Shard | None:
    """``--shard``: ``I/N``; ``none``; ``auto`` or None: from the array task, if any."""
    if given is None or given.strip().lower() == "auto":
        return shard_of_task(slurm)
    if given.strip().lower() == "none":
        return None
    return parse_shard(given)


def _hash(name: str) -> bytes:
    return blake2b(name.encode(), digest_size=8).digest()


def assign(names: Sequence[str], weights: Mapping[str, float], count: int) -> dict[str, int]:
    """Each name's shard (1..count): largest expected size first, to the least loaded."""
    known = [float(weights[n]) for n in names if weights.get(n) is not None]
    fallback = sum(known) / len(known) if known else 1.0
    weight = {n: float(weights[n]) if weights.get(n) is not None else fallback for n in names}
    # the least loaded shard, lowest first on ties: shards not used yet (load 0) are
    # ``unused`` onwards, so N can be an array's size without a list of N loads
    used: list[tuple[float, int]] = []
    unused = 0
    where = {}
    for name in sorted(dict.fromkeys(names), key=lambda n: (-weight[n], _hash(n), n)):
        if unused < count and (not used or (0.0, unused) < used[0]):
            load, target = 0.0, unused
            unused += 1
        else:
            load, target = heapq.heappop(used)
        where[name] = target + 1
        heapq.heappush(used, (load + max(weight[name], 0.0), target))
    return where


def select(items: Sequence[T], shard: Shard, weights: Mapping[str, float]) -> list[T]:
    """The items (anything with ``name``) of ``shard``, in their given order."""
    where = assign([item.name for item in items], weights, shard.count)  # type: ignore[attr-defined]
    return [item for item in items if where[item.name] == shard.index]  # type: ignore[attr-defined]


def expected_sizes(directory: Path) -> dict[str, float]:
    """Per target, the source size at its newest successful unsharded sync (else plan),
    from the history: what every shard of a run sees alike (see the module doc)."""
    from pdbsync.store import history as state

    try:
        records = state.last_runs(0, directory)
    except state.StateError:
        return {}
    sizes: dict[str, float] = {}
    planned: dict[str, float] = {}
    for record in records:  # newest first
        if record.get("shard"):
            continue
        for entry in record.get("targets", []):
            size = entry.get("total_size")
            if size is None or entry.get("status") != "success":
                continue
            bucket = sizes if record.get("kind") == "sync" else planned
            bucket.setdefault(entry["name"], float(size))
    return {**planned, **sizes}
