"""One strict reading of the numbers people and schedulers hand pdb-sync: flag values
and Slurm's variables.

Python's ``int()`` and ``float()`` accept more than anyone means by a number: other
scripts' decimal digits (``int('٣') == 3``), underscores (``1_0``), surrounding
whitespace, ``inf``, ``nan`` and ``1e400``; ``str.isdigit`` says yes to ``'²'`` that
``int()`` then refuses. A value that slips through as some other number, or a crash on
one that does not (exit 70), is worse than a refusal, so every number here is ASCII
digits (an optional ``-`` and, for seconds, one ``.``), range-checked, and a bad one is
a message naming where it came from and what was given.

:func:`whole` and :func:`decimal` are the rule (ValueError with the reason);
:func:`env_whole` names a variable (UsageError, exit 2); :func:`flag_whole` and
:func:`flag_decimal` are argparse types (argparse names the flag).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from pdbsync.errors import UsageError

_WHOLE = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
#: Longer than any number in range here; stops ``int()`` on thousands of digits.
_MAX_DIGITS = 30

_N = TypeVar("_N", int, float)

#: The most rsyncs one run starts at once (``parallel``, ``sync --parallel``, ``slurm
#: script --parallel``) and the most parts a target splits into (``split``): one limit,
#: so a library call, the command line and a batch script accept the same runs.
MAX_PARALLEL = 100


def _in_range(value: float, text: str, low: float | None, high: float | None) -> None:
    # ``text`` matched the pattern (ASCII digits): safe to show unquoted
    if low is not None and high is not None and not low <= value <= high:
        raise ValueError(f"must be between {_show(low)} and {_show(high)}, got {text}")
    if low is not None and value < low:
        raise ValueError(f"must be {_show(low)} or more, got {text}")
    if high is not None and value > high:
        raise ValueError(f"must be at most {_show(high)}, got {text}")


def _show(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def whole(text: str, low: int | None = None, high: int | None = None) -> int:
    """``text`` as a whole number from ``low`` to ``high`` (None: unbounded), ASCII
    digits only; ValueError saying why not."""
    if not _WHOLE.fullmatch(text) or len(text) > _MAX_DIGITS:
        raise ValueError(f"expected a whole number (digits 0-9), got {text!r}")
    value = int(text)
    _in_range(value, text, low, high)
    return value


def decimal(text: str, low: float | None = None, high: float | None = None) -> float:
    """``text`` as a number such as ``2`` or ``0.5`` from ``low`` to ``high``, ASCII
    digits only (no exponent, inf or nan); ValueError saying why not."""
    if not _DECIMAL.fullmatch(text) or len(text) > _MAX_DIGITS:
        raise ValueError(f"expected a number such as 2 or 0.5 (digits 0-9), got {text!r}")
    value = float(text)
    _in_range(value, text, low, high)
    return value


def env_whole(
    environ: Mapping[str, str], name: str, low: int | None = 0, high: int | None = None
) -> int | None:
    """Variable ``name`` as a whole number; None when unset or empty. UsageError naming
    the variable and its value otherwise: a scheduler's variable that cannot be read is
    never silently ignored (an ignored array task id would run every target)."""
    text = environ.get(name)
    if text is None or text == "":
        return None
    try:
        return whole(text, low, high)
    except ValueError as exc:
        raise UsageError(f"{name}={text!r}: {exc}") from None


def flag_whole(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number from ``low`` to ``high``."""
    return _flag(lambda text: whole(text, low, high))


def flag_decimal(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    """An argparse ``type`` for a number (seconds, say) from ``low`` to ``high``."""
    return _flag(lambda text: decimal(text, low, high))


def _flag(read: Callable[[str], _N]) -> Callable[[str], _N]:
    """``read`` as an argparse ``type``: its ValueError becomes the ArgumentTypeError
    that argparse prints after the flag's name."""

    def parse(text: str) -> _N:
        import argparse

        try:
            return read(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
