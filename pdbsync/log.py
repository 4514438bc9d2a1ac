"""pdb-sync's own diagnostics, through loguru, which is imported only when needed.

A plain run (no ``-v``, no ``--log-file``) shows warnings only, and almost never has
one; importing loguru pulls in asyncio, a noticeable share of a short run
(docs/benchmarks.md). So the level is kept here and loguru is loaded and given its sinks on the
first message that will actually be written.

The ``--log-file`` is opened by :func:`pdbsync.outputs.open_for_append` (a symlink is
followed, a FIFO or device written in place, a directory refused) and loguru is handed
the open stream, never the path: given a path, loguru would open it itself, blocking
forever on a FIFO nobody reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, TextIO

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30}
_settings: dict[str, Any] = {"level": "WARNING", "stderr": None, "log_file": None}
_state: dict[str, Any] = {"logger": None, "sink": None}


class _LogFileSink:
    """The ``--log-file`` as loguru sees it: whole lines written straight to the file.

    A failed write (a full disk, /dev/full, the FIFO's reader gone) must neither stop the
    run nor print loguru's traceback: it is reported once on stderr, in one line, and
    the file gets nothing more.
    """

    def __init__(self, stream: BinaryIO, path: str, stderr: TextIO | None) -> None:
        self.stream = stream
        self.path = path
        self.stderr = stderr
        self.failed = False

    def write(self, message: str) -> None:
        if self.failed:
            return
        data = memoryview(message.encode("utf-8", "replace"))
        try:
            while data:
                data = data[self.stream.write(data) or 0 :]
        except OSError as exc:
            self.failed = True
            if self.stderr is not None:
                self.stderr.write(
                    f"pdb-sync: warning: --log-file {self.path}: cannot write: "
                    f"{exc.strerror or exc}; no more diagnostics go there\n"
                )
                self.stderr.flush()

    def close(self) -> None:
        self.stream.close()


def configure(level: str, stderr: TextIO, log_file: str | None) -> None:
    """Set the console level and the optional JSON file sink (opened right away, so a bad
    path is reported before any work starts: UsageError naming ``--log-file``)."""
    from pdbsync.outputs import open_for_append

    _close()
    _settings.update(level=level, stderr=stderr, log_file=None)
    if log_file:
        stream = open_for_append(Path(log_file), "--log-file")
        _settings["log_file"] = log_file
        _state["sink"] = _LogFileSink(stream, log_file, stderr)
        _logger()


def shutdown() -> None:
    """Close the log file (the command line's last step before a quick exit)."""
    _close()


def _close() -> None:
    """Forget the loguru set-up and close the previous log file (tests configure often)."""
    if _state["logger"] is not None:
        _state["logger"].remove()
        _state["logger"] = None
    if _state["sink"] is not None:
        _state["sink"].close()
        _state["sink"] = None


def _threshold() -> int:
    return 10 if _settings["log_file"] else _LEVELS[_settings["level"]]


def _logger() -> Any:
    if _state["logger"] is None:
        from loguru import logger

        if _settings["stderr"] is None and _state["sink"] is None:
            # Never configured: a library caller's process. Its loguru handlers (by
            # default loguru's own, to stderr) are its business: pdb-sync's warnings go
            # there rather than nowhere, and none of the caller's is removed.
            _state["logger"] = logger
            return logger
        logger.remove()
        if _settings["stderr"] is not None:
            logger.add(
                _settings["stderr"],
                level=_settings["level"],
                format="pdb-sync: {level}: {message}",
                colorize=False,
                filter=lambda record: not record["extra"].get("file_only"),
            )
        if _state["sink"] is not None:
            logger.add(_state["sink"], level="DEBUG", serialize=True)
        _state["logger"] = logger
    return _state["logger"]


def debug(message: str, *args: Any) -> None:
    if _threshold() <= 10:
        _logger().opt(depth=1).debug(message, *args)


def info(message: str, *args: Any) -> None:
    if _threshold() <= 20:
        _logger().opt(depth=1).info(message, *args)


def warning(message: str, *args: Any) -> None:
    _logger().opt(depth=1).warning(message, *args)


def is_verbose() -> bool:
    """Whether ``-v`` (or more) was given."""
    return _LEVELS[_settings["level"]] < _LEVELS["WARNING"]


def log_file() -> str | None:
    """The ``--log-file`` being written, if one is open."""
    return _settings["log_file"]


def write_traceback(text: str) -> str | None:
    """Put an internal error's traceback into the ``--log-file``; where it went, or None
    when there is no log file (the caller then shows it on stderr with ``-v``)."""
    if _settings["log_file"] is None:
        return None
    _logger().bind(file_only=True).opt(depth=1).error("internal error\n{}", text)
    return f"in {_settings['log_file']}"
