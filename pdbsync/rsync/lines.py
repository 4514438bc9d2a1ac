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
        if self._after_cr and data:
            if data[:1] == b"\n":
                data = data[1:]  # the \n of a \r\n that was split across two reads
            self._after_cr = False
        end = data.rfind(b"\n")
        body, rest = (data[:end], data[end + 1 :]) if end >= 0 else (None, data)
        if body is None:
            lines: list[bytes] = []
        elif b"\r" not in body:
            lines = body.split(b"\n")  # splits in C
        elif body and body[:1] != b"\n" and body[-1:] != b"\n" and b"\n\n" not in body:
            # No blank line here, so every empty piece is a \r's and is dropped: the
            # whole split runs in C. This is rsync -v with --info=progress2, which ends
            # each file's line with \n and starts each redraw with \r (two lines a
            # file), where the loop below cost that worker a share of its CPU.
            lines = list(filter(None, body.replace(b"\n", b"\r").split(b"\r")))
        else:
            lines = []
            for piece in body.split(b"\n"):
                if b"\r" not in piece:
                    lines.append(piece)  # a blank line stays
                    continue
                *redraws, last = piece.split(b"\r")
                lines.extend(redraw for redraw in redraws if redraw)
                if last:  # empty when the piece ended in \r: that \r\n is one line end
                    lines.append(last)
        if b"\r" in rest:
            *redraws, rest = rest.split(b"\r")
            lines.extend(redraw for redraw in redraws if redraw)
            self._after_cr = not rest
        self._rest = rest
        return lines

    def close(self) -> list[bytes]:
        """Whatever unterminated text is left at end of stream, as a last line."""
        rest, self._rest = self._rest, b""
        return [rest] if rest else []
