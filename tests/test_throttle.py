"""The one progress-thinning rule (worker and text renderer share it)."""

from __future__ import annotations

from pdbsync.report.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_at_most_one_item_per_interval_goes_out_and_the_latest_is_held():
    clock = Clock()
    throttle: Throttle[int] = Throttle(5.0, clock)
    assert throttle.offer(1) == 1  # the first always goes
    clock.now += 1
    assert throttle.offer(2) is None
    clock.now += 1
    assert throttle.offer(3) is None
    assert throttle.held == 3  # only the latest is kept
    clock.now += 3
    assert throttle.offer(4) == 4  # the interval passed: it goes, the older held one is dropped
    assert throttle.held is None


def test_release_hands_over_the_held_item_once():
    clock = Clock()
    throttle: Throttle[str] = Throttle(1.0, clock)
    throttle.offer("a")
    throttle.offer("b")
    assert throttle.release() == "b"
    assert throttle.release() is None
