"""The collector's handling of a worker's events, without processes (the runs through
a real pool and rsync daemon are in test_sync.py, test_split.py and test_lifecycle.py)."""

from __future__ import annotations

from typing import Any

from pdbsync.events import make_event
from pdbsync.messages import OutputLines
from pdbsync.run.collector import Collector


def _collector() -> tuple[Collector, list[Any]]:
    """A collector whose sink records what it is given, in order."""
    seen: list[Any] = []
    collector = Collector(jobs=[], parallel=1, emit=seen.append)
    collector.emit_lines = seen.append  # set by run(); a renderer takes the lines at once
    return collector, seen


def test_events_pass_on_in_order_until_their_job_has_a_result():
    collector, seen = _collector()
    collector.finished_keys = {"done", "mmcif 1/2"}
    started = make_event("sync_started", "pdb", "Starting sync...")
    lines = OutputLines("pdb", started["ts"], "stdout", ["a", "b"])
    late = make_event("retry", "done", "Retrying")
    late_lines = OutputLines("done", started["ts"], "stderr", ["late"])
    late_part = make_event("progress", "mmcif", "50%", part=1, parts=2)
    other_part = make_event("progress", "mmcif", "10%", part=2, parts=2)
    run_level = make_event("warning", None, "a warning of the whole run")

    collector._pass_on([started, late, lines, late_lines, late_part, other_part, run_level])

    assert seen == [started, lines, other_part, run_level]


def test_a_split_targets_part_plans_wait_for_the_merge():
    collector, seen = _collector()
    first = make_event("plan", "mmcif", "plan of part 1", part=1, parts=2)
    second = make_event("plan", "mmcif", "plan of part 2", part=2, parts=2)
    whole = make_event("plan", "pdb", "plan of an unsplit target")

    collector._pass_on([first, whole, second])

    assert seen == [whole]
    assert collector.part_plans == {"mmcif": {1: first, 2: second}}
