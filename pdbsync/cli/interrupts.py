"""Stop signals for the command line: turn SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2
into a cancel request the run polls (anything with ``is_set()`` cancels a run).

Only the CLI installs these handlers: a library caller cancels with its own
``threading.Event`` and may run a sync from any thread.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pdbsync.run.worker import STOP_SIGNALS


@dataclass
class Interrupts:
    """The stop signals received during a run.

    Every signal in :data:`worker.STOP_SIGNALS` cancels the run the same way; the first
    one names the cause (summary ``interrupted``, exit status 128 + its number). A second
    SIGINT is the impatient Ctrl-C: the process leaves at once, without a summary; its
    workers get their parent-death signal and stop their rsyncs.
    """

    reason: str | None = None  # "SIGTERM", "SIGINT", "SIGHUP", ...

    def is_set(self) -> bool:
        return self.reason is not None

    def handle(self, signum: int, _frame: object) -> None:
        if self.reason is None:
            self.reason = signal.Signals(signum).name
        elif signum == signal.SIGINT:
            os._exit(128 + signal.SIGINT)


@contextmanager
def catching_signals(interrupts: Interrupts) -> Iterator[Interrupts]:
    """Route the stop signals to ``interrupts`` for the duration of the block.

    Without this, SIGHUP (a closed ssh session) and SIGUSR1 would end the process at
    once, with no summary.
    """
    previous = {sig: signal.signal(sig, interrupts.handle) for sig in STOP_SIGNALS}
    try:
        yield interrupts
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
