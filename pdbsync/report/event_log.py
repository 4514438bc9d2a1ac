"""``--events PATH``: every event of the run as JSON Lines in a file, whatever ``--format``
prints.

A batch job wants both: a log people can read (``--format text`` in the job's
``--output``) and the machine stream for tools (the same events ``--format json``
prints, one per line, ``run_finished`` with the summary last). The file is opened by
:func:`pdbsync.outputs.open_for_append` once the run has passed every check (the
command line calls :meth:`EventLog.start` from ``api.sync``'s ``before_run``): a refused
run leaves no file, and the events sent before that (a ``warning`` from the preflight)
wait in memory and are written first. It is appended to, like ``--log-file``, so a
requeued job that reuses the name keeps both runs, each beginning with ``run_started``;
a symlink is written through, a FIFO or device in place. A write that fails later (a
full disk) stops the file, not the run; the caller reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from pdbsync import outputs
from pdbsync.messages import OutputLines, lines_sink
from pdbsync.report.render import json_lines


class EventLog:
    """An event sink that passes each event on to ``sink`` and appends it to a file.

    ``stream`` None: the file is not open yet (:meth:`deferred`); events gather until
    :meth:`start` opens it, and nothing is written if it never does.
    """

    def __init__(
        self,
        sink: Callable[[dict[str, Any]], None],
        stream: BinaryIO | None,
        label: str,
        path: Path | None = None,
    ):
        self.sink = sink
        self.sink_lines = lines_sink(sink)
        self.stream = stream
        self.label = label
        self.path = path
        self.lines: list[bytes] = []
        self.error: str | None = None
        note = getattr(sink, "note", None)
        if note is not None:  # notes for people (pdbsync.api._preflight) pass on
            self.note = note

    @classmethod
    def deferred(cls, sink: Callable[[dict[str, Any]], None], path: Path) -> EventLog:
        """An events file at ``path`` that is opened by :meth:`start`, not now."""
        return cls(sink, None, f"--events {path}", path)

    def start(self) -> None:
        """Open the file (UsageError, exit 2, naming ``--events`` if it cannot be
        written) and write the events gathered so far."""
        if self.stream is None and self.path is not None:
            self.stream = outputs.open_for_append(self.path, "--events")
            self._write()

    def __call__(self, event: dict[str, Any]) -> None:
        self.sink(event)
        if self.error is None:
            self.lines.append(orjson.dumps(event) + b"\n")

    def output_lines(self, lines: OutputLines) -> None:
        """A run of output events (see pdbsync.run.collector.Collector): passed on as a run if
        the sink takes runs, and appended in one piece."""
        self.sink_lines(lines)
        if self.error is None:
            self.lines.append(json_lines(lines))

    def flush(self) -> None:
        """Flush the sink, then write the events gathered since the last flush."""
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            flush()
        self._write()

    def _write(self) -> None:
        if not self.lines or self.error is not None or self.stream is None:
            return  # not open yet: the lines wait for start()
        data, self.lines = b"".join(self.lines), []
        try:
            self.stream.write(data)
        except OSError as exc:
            self.error = f"{self.label}: cannot write: {exc.strerror or exc}"

    def close(self) -> str | None:
        """Write what is left and close the file; the write error, if there was one.
        A file never started is not created."""
        self.flush()
        if self.stream is None:
            return self.error
        try:
            self.stream.close()
        except OSError as exc:
            self.error = self.error or f"{self.label}: cannot write: {exc.strerror or exc}"
        return self.error
