"""pdb-sync's own diagnostics, through loguru, which is imported only when needed.

A plain run (no ``-v``, no ``--log-file``) shows warnings only, and almost never has
one; importing loguru costs about 70 ms (it pulls in asyncio), a noticeable share of a
short run. So the level is kept here and loguru is loaded and given its sinks on the
first message that will actually be written.
"""

from __future__ import annotations

from typing import Any, TextIO

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30}
_settings: dict[str, Any] = {"level": "WARNING", "stderr": None, "log_file": None}
_state: dict[str, Any] = {"logger": None}


def configure(level: str, stderr: TextIO, log_file: str | None) -> None:
    """Set the console level and the optional JSON file sink (opened right away, so a bad
    path is reported before any work starts)."""
    _settings.update(level=level, stderr=stderr, log_file=log_file)
    _state["logger"] = None
    if log_file:
        _logger()


def _threshold() -> int:
    return 10 if _settings["log_file"] else _LEVELS[_settings["level"]]


def _logger() -> Any:
    if _state["logger"] is None:
        from loguru import logger

        logger.remove()
        if _settings["stderr"] is not None:
            logger.add(
                _settings["stderr"],
                level=_settings["level"],
                format="pdb-sync: {level}: {message}",
                colorize=False,
            )
        if _settings["log_file"]:
            logger.add(_settings["log_file"], level="DEBUG", serialize=True)
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
