"""One rule for thinning progress redraws, used by the worker and the text renderer.

rsync redraws its progress line many times a second (with ``-v``, after every file);
nobody needs them all, but everybody needs the last one (100%, or where a stopped
transfer got to). So: at most one item per ``interval`` goes out as it comes; the
latest one that did not is held, and the owner releases it when the moment has come
(the transfer's end, or before the lines that follow its final state).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Throttle(Generic[T]):
    """Lets an item through at most once per ``interval`` seconds, holding the latest."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.last_sent: float | None = None
        self.held: T | None = None

    def offer(self, item: T) -> T | None:
        """``item`` if it may go out now (anything held is then dropped: it is older),
        else None and ``item`` is held."""
        now = self.clock()
        if self.last_sent is None or now - self.last_sent >= self.interval:
            self.last_sent = now
            self.held = None
            return item
        self.held = item
        return None

    def release(self) -> T | None:
        """The held item (to send now), if any; nothing is held afterwards."""
        held, self.held = self.held, None
        return held
