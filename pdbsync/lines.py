"""Splitting a child's byte stream into lines the way a terminal would show them.

rsync's ``--info=progress2`` redraws one line with ``\\r`` and ends it with ``\\n`` only
at the very end, so both are line ends here. A ``\\r`` followed by ``\\n`` must not
produce an extra empty line, even when the two bytes arrive in different reads.
"""

from __future__ import annotations


class LineSplitter:
    """Feed it chunks of bytes; it returns the complete lines (without terminators)."""

    def __init__(self) -> None:
        self._rest = b""
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines completed by ``chunk``; an unterminated tail is kept for later."""
        data = self._rest + chunk
        if b"\r" not in data:  # the common case: plain output, one split in C
            lines = data.split(b"\n")
            self._rest = lines.pop()
            if lines and self._after_cr and lines[0] == b"":
                del lines[0]  # the \n of a \r\n that was split across two reads
            if data:  # the byte after the \r has been seen: only that one \n pairs with it
                self._after_cr = False
            return lines
        lines = []
        start = 0
        cr = data.find(b"\r")
        lf = data.find(b"\n")
        while cr >= 0 or lf >= 0:
            is_lf = lf >= 0 and (cr < 0 or lf < cr)
            end = lf if is_lf else cr
            line = data[start:end]
            if line or (is_lf and not self._after_cr):
                lines.append(line)
            self._after_cr = not is_lf
            start = end + 1
            if is_lf:
                lf = data.find(b"\n", start)
            else:
                cr = data.find(b"\r", start)
        self._rest = data[start:]
        return lines

    def close(self) -> list[bytes]:
        """Whatever unterminated text is left at end of stream, as a last line."""
        rest, self._rest = self._rest, b""
        return [rest] if rest else []
