"""Splitting rsync's byte stream on \\n and \\r like a terminal shows it."""

from __future__ import annotations

import pytest

from pdbsync.rsync.lines import LineSplitter


def split_all(*chunks: bytes) -> list[bytes]:
    splitter = LineSplitter()
    lines = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    return lines + splitter.close()


def test_plain_lines():
    assert split_all(b"a\nb\n") == [b"a", b"b"]


def test_progress_redraws_are_separate_lines():
    assert split_all(b"\r  10%\r  50%\r 100%\n") == [b"  10%", b"  50%", b" 100%"]


def test_cr_lf_gives_no_empty_line_even_across_reads():
    assert split_all(b"done\r", b"\nnext\n") == [b"done", b"next"]
    assert split_all(b"done\r\nnext\n") == [b"done", b"next"]


def test_blank_lines_are_kept():
    assert split_all(b"a\n\nb\n") == [b"a", b"", b"b"]


def test_unterminated_tail_comes_out_at_close():
    splitter = LineSplitter()
    assert splitter.feed(b"par") == []
    assert splitter.feed(b"tial") == []
    assert splitter.close() == [b"partial"]


def test_redraw_is_delivered_before_the_line_ends():
    """A \\r-terminated redraw must not wait for the final \\n (that may be hours away)."""
    splitter = LineSplitter()
    assert splitter.feed(b"\r  1%\r  2%\r") == [b"  1%", b"  2%"]


def test_blank_line_after_cr_lf_split_across_reads_is_kept():
    """Only the \n right after a \r pairs with it; the next \n is a blank line."""
    assert split_all(b"a\r", b"\n", b"\n") == [b"a", b""]
    assert split_all(b"a\r", b"\n", b"\n", b"b\n") == [b"a", b"", b"b"]
    assert split_all(b"a\r", b"", b"\n", b"\n") == [b"a", b""]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_any_chunking_gives_the_same_lines(size):
    data = b"x\r\ny\rz\n\nlong line here\r\r\nend\r\n\na\r\n\n\nlast"
    whole = split_all(data)
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    assert split_all(*pieces) == whole
    assert whole == [b"x", b"y", b"z", b"", b"long line here", b"end", b"", b"a", b"", b"", b"last"]


def _reference(data: bytes) -> list[bytes]:
    """The rules, one byte at a time: \\n and \\r end lines; a \\r's empty line is dropped
    and a \\n right after a \\r adds nothing; an unterminated tail comes last."""
    lines, current, after_cr = [], b"", False
    for byte in data:
        char = bytes([byte])
        if char == b"\n":
            if current or not after_cr:
                lines.append(current)
            current, after_cr = b"", False
        elif char == b"\r":
            if current:
                lines.append(current)
            current, after_cr = b"", True
        else:
            current += char
            after_cr = False
    return lines + ([current] if current else [])


def test_random_streams_split_like_the_byte_by_byte_rules():
    import random

    rng = random.Random(7)
    for _ in range(3000):
        data = bytes(rng.choice(b"ab\r\n ") for _ in range(rng.randint(0, 40)))
        cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randint(0, 6))))
        pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert split_all(*pieces) == _reference(data), (data, pieces)


def test_random_rsync_like_streams_split_like_the_byte_by_byte_rules():
    """Long streams shaped like rsync -v --info=progress2 (a file's line, then a redraw
    that starts with \\r), with blank lines, CR LF and bare redraws mixed in, cut anywhere."""
    import random

    rng = random.Random(11)
    parts = [b">f+++++++++ ab/1abc.cif.gz\n", b"\r      1,048  0% (xfr#3, ir-chk=1/9)\n",
             b"\r  2,000  5%", b"\n", b"\r\n", b"\r", b"cd+++++++++ ab/\n", b"x"]  # fmt: skip
    for _ in range(2000):
        data = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randint(0, 8))))
        pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert split_all(*pieces) == _reference(data), (data, pieces)
