"""``pdb-sync summary merge``: the summaries of a job array's shards as one summary.

Each task of an array writes its own summary (``--summary logs/s-%A_%a.json``); a
follow-up job wants one answer: did every target of the whole run succeed? The merged
summary has the same schema as a single run's (the same readers, ``summary show``,
``--rerun-failed`` work on it), every target's result once, totals recomputed, and a
``merge`` section: the shards it came from and what is wrong with the set:

- a shard index from 1 to N (``--expect N``, else the shards' own count) with no
  summary: ``missing_shards`` (the task never wrote one: killed before it could, or
  not run);
- a target in no summary although a shard's ``all_targets`` lists it:
  ``missing_targets``; a target in two summaries: ``duplicated_targets`` (the result
  of the summary that finished last is kept: a rerun's).

``complete`` is true when none of these happened; the command exits 0 only when the
merge is complete and every target succeeded.

A set that cannot be one run is refused instead (:func:`check_inputs`, exit 2, one
line naming the files): shards of different array jobs, of different counts, one shard
twice, an index past its count, a count (or ``--expect``) past
:data:`~pdbsync.batch.shards.MAX_SHARDS` (no array has more tasks; and the missing shards of
a count of 10**15 would not fit in memory), ``--expect`` other than the shards' count
(or fewer than the unsharded summaries given), and ``-o`` naming one of the inputs
(:func:`check_output`), which the merge would replace. Merging such a set would report
a run that never happened.

``merge.duplicated_shards`` is therefore always ``[]``: it stays in the summary (and is
required by the schema) for readers of merges written before one shard twice was
refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdbsync.batch.shards import MAX_SHARDS
from pdbsync.errors import UsageError
from pdbsync.times import seconds_between


@dataclass(frozen=True)
class ShardSummary:
    """One input: its file and its validated summary."""

    file: str
    data: dict[str, Any]

    @property
    def index(self) -> int | None:
        shard = self.data.get("shard")
        return shard["index"] if shard else None

    @property
    def count(self) -> int | None:
        shard = self.data.get("shard")
        return shard["count"] if shard else None


def load_shards(paths: Sequence[Path]) -> list[ShardSummary]:
    """Read and validate each summary; UsageError (exit 2) naming the file on the first
    that is unreadable, invalid, or a plan."""
    from pdbsync.report.artifacts import is_plan, load_summary

    loaded = []
    for path in paths:
        label = f"summary merge {path}"
        data = load_summary(path, label)
        if is_plan(data):
            raise UsageError(f"{label}: a plan, not a sync summary")
        loaded.append(ShardSummary(str(path), data))
    return loaded


def check_output(output: Path, files: Sequence[Path]) -> None:
    """UsageError when ``-o`` is one of the inputs: writing the merge there would lose
    that shard's summary (checked before anything is written)."""
    for file in files:
        same = output.resolve() == file.resolve()
        if not same and output.exists() and file.exists():
            same = os.path.samefile(output, file)
        if same:
            raise UsageError(
                f"summary merge: -o {output} is also one of its inputs ({file}); "
                "the merge would replace it: write it elsewhere"
            )


def check_inputs(inputs: Sequence[ShardSummary], expect: int | None = None) -> None:
    """UsageError (one line naming the files and how they disagree) for a set of
    summaries that cannot be the shards of one run.

    The checks run in this order, so a set with several faults is told the first one.
    """
    _refuse_repeated_files(inputs)
    if expect is not None and not 1 <= expect <= MAX_SHARDS:
        raise UsageError(f"summary merge: --expect {expect}: must be between 1 and {MAX_SHARDS}")
    sharded = [shard for shard in inputs if shard.index is not None]
    for shard in sharded:
        _refuse_impossible_shard(shard)
    _refuse_other_runs(sharded)
    _refuse_repeated_index(sharded)
    if expect is not None:
        _refuse_other_expect(expect, inputs, sharded)


def _refuse_repeated_files(inputs: Sequence[ShardSummary]) -> None:
    """One file given twice (under any name) would count its targets twice."""
    files: dict[str, ShardSummary] = {}
    for shard in inputs:
        key = os.path.realpath(shard.file)
        if key in files:
            raise UsageError(f"summary merge: {shard.file} is given twice")
        files[key] = shard


def _refuse_impossible_shard(shard: ShardSummary) -> None:
    """A shard no Slurm array can have: a count past MAX_SHARDS, an index past its count."""
    if shard.count > MAX_SHARDS:  # type: ignore[operator]
        raise UsageError(
            f"summary merge: {shard.file} says shard {shard.index}/{shard.count}: "
            f"more shards than the {MAX_SHARDS} a Slurm array can have"
        )
    if shard.index > shard.count:  # type: ignore[operator]
        raise UsageError(
            f"summary merge: {shard.file} says shard {shard.index}/{shard.count}: "
            "an index past the count"
        )


def _refuse_other_runs(sharded: Sequence[ShardSummary]) -> None:
    """Shards of one run share its array job (where Slurm gave one) and its count."""
    jobs = [(shard, _array_job(shard)) for shard in sharded if _array_job(shard)]
    for shard, job in jobs[1:]:
        first, first_job = jobs[0]
        if job != first_job:
            raise UsageError(
                f"summary merge: {first.file} is from array job {first_job}, {shard.file} "
                f"from array job {job}: shards of different runs"
            )
    for shard in sharded[1:]:
        first = sharded[0]
        if shard.count != first.count:
            raise UsageError(
                f"summary merge: {first.file} is shard {first.index}/{first.count}, "
                f"{shard.file} is shard {shard.index}/{shard.count}: the counts differ"
            )


def _refuse_repeated_index(sharded: Sequence[ShardSummary]) -> None:
    """Two summaries of one shard: a rerun's and the first's, or a copy."""
    seen: dict[int, ShardSummary] = {}
    for shard in sharded:
        if shard.index in seen:
            raise UsageError(
                f"summary merge: {seen[shard.index].file} and {shard.file} are both shard "
                f"{shard.index}/{shard.count}"
            )
        seen[shard.index] = shard  # type: ignore[index]


def _refuse_other_expect(
    expect: int, inputs: Sequence[ShardSummary], sharded: Sequence[ShardSummary]
) -> None:
    """``--expect`` must agree with the shards' own count, or (unsharded summaries)
    leave room for every summary given."""
    if sharded and expect != sharded[0].count:
        first = sharded[0]
        raise UsageError(
            f"summary merge: --expect {expect}, but {first.file} is shard "
            f"{first.index}/{first.count}: the shards say {first.count}"
        )
    unsharded = [shard.file for shard in inputs if shard.index is None]
    if not sharded and len(unsharded) > expect:
        raise UsageError(
            f"summary merge: --expect {expect}, but {len(unsharded)} summaries are given "
            f"({', '.join(unsharded)})"
        )


def _array_job(shard: ShardSummary) -> str | None:
    return (shard.data.get("slurm") or {}).get("array_job_id")


def merge(inputs: Sequence[ShardSummary], expect: int | None = None) -> dict[str, Any]:
    """The merged summary (validated against schemas/summary.schema.json)."""
    from pdbsync import __version__
    from pdbsync.report.summary import Summary, SyncResult, validate_summary

    if not inputs:
        raise UsageError("summary merge: no summary files given")
    check_inputs(inputs, expect)
    counts = [shard.count for shard in inputs if shard.count is not None]
    expected = expect or (max(counts) if counts else len(inputs))
    ordered = sorted(
        inputs, key=lambda s: (s.index is None, s.index or 0, s.data["finished_at"], s.file)
    )
    # check_inputs bounds ``expected`` by MAX_SHARDS; a set keeps this one pass over it
    present = {shard.index for shard in inputs if shard.index is not None}
    if present:
        missing_shards = [i for i in range(1, expected + 1) if i not in present]
    else:  # unsharded runs: only their number can be checked
        missing_shards = list(range(len(inputs) + 1, expected + 1))

    everything: list[str] = []
    for shard in ordered:
        for name in (shard.data.get("shard") or {}).get("all_targets", []):
            if name not in everything:
                everything.append(name)
    results: dict[str, dict[str, Any]] = {}
    finished: dict[str, str] = {}
    seen_in: dict[str, int] = {}
    for shard in ordered:
        for result in shard.data["results"]:
            name = result["name"]
            seen_in[name] = seen_in.get(name, 0) + 1
            if name not in results or shard.data["finished_at"] >= finished[name]:
                results[name], finished[name] = result, shard.data["finished_at"]
    duplicated_targets = [name for name, times in seen_in.items() if times > 1]
    missing_targets = [name for name in everything if name not in results]
    order = everything + [name for name in results if name not in everything]
    interrupted = next((s.data["interrupted"] for s in ordered if s.data["interrupted"]), None)
    started_at = min(shard.data["started_at"] for shard in inputs)
    finished_at = max(shard.data["finished_at"] for shard in inputs)
    summary = Summary(
        results=[SyncResult.from_dict(results[name]) for name in order if name in results],
        parallel=max(shard.data["parallel"] for shard in inputs),
        started_at=started_at,
        finished_at=finished_at,
        duration_s=seconds_between(started_at, finished_at),
        interrupted=interrupted,
    )
    complete = not (missing_shards or missing_targets or duplicated_targets)
    data = summary.to_dict()
    data["version"] = __version__
    if not complete and data["exit_code"] == 0:
        data["exit_code"] = 1  # a target nobody ran is no success
    data["merge"] = {
        "expected_shards": expected,
        "shards": [_shard_entry(shard) for shard in ordered],
        "missing_shards": missing_shards,
        "duplicated_shards": [],  # one shard twice is refused (check_inputs)
        "missing_targets": missing_targets,
        "duplicated_targets": duplicated_targets,
        "complete": complete,
    }
    validate_summary(data)
    return data


def _shard_entry(shard: ShardSummary) -> dict[str, Any]:
    data = shard.data
    return {
        "file": shard.file,
        "index": shard.index,
        "count": shard.count,
        "host": data.get("host"),
        "slurm": data.get("slurm"),
        "exit_code": data["exit_code"],
        "interrupted": data["interrupted"],
        "started_at": data["started_at"],
        "finished_at": data["finished_at"],
        "targets": [result["name"] for result in data["results"]],
    }


def report(data: dict[str, Any]) -> str:
    """The merge for people: one line per shard, the problems, then the summary block."""
    from pdbsync.report.render import summary_block

    info = data["merge"]
    present = len({s["index"] for s in info["shards"] if s["index"] is not None}) or len(
        info["shards"]
    )
    lines = [f"Merged {present} of {info['expected_shards']} shards:"]
    for shard in info["shards"]:
        label = f"shard {shard['index']}/{shard['count']}" if shard["index"] else "unsharded"
        slurm = shard["slurm"] or {}
        job = slurm.get("array_job_id") and f"{slurm['array_job_id']}_{slurm['array_task_id']}"
        where = ", ".join(part for part in (shard["host"], job or slurm.get("job_id")) if part)
        names = ", ".join(shard["targets"]) or "(no targets)"
        lines.append(
            f"  {label} ({where or 'unknown host'}) exit {shard['exit_code']}: {names}"
            f" [{shard['file']}]"
        )
    for key, words in (
        ("missing_shards", "missing shards"),
        ("missing_targets", "targets in no shard"),
        ("duplicated_targets", "targets in more than one shard"),
    ):
        if info[key]:
            lines.append(f"{words}: {', '.join(str(item) for item in info[key])}")
    return "\n".join(lines) + "\n" + summary_block(data)
