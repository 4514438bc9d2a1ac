"""pdbsync.times: the one reading of ISO times, what it takes and what it refuses."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from pdbsync.times import (
    format_utc,
    is_utc_stamp,
    parse_iso,
    parse_utc,
    seconds_between,
    unix_seconds,
    utc_now,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T10:58:30.123Z", datetime(2026, 11, 27, 10, 58, 30, 123000, UTC)),
        ("2026-11-27T10:58:30Z", datetime(2026, 11, 27, 10, 58, 30, tzinfo=UTC)),
        ("2026-11-27T10:58:30+00:00", datetime(2026, 11, 27, 10, 58, 30, tzinfo=UTC)),
        ("2026-11-27T12:58:30+02:00", datetime(2026, 11, 27, 10, 58, 30, tzinfo=UTC)),
        ("2026-11-27 10:58:30.5Z", datetime(2026, 11, 27, 10, 58, 30, 500000, UTC)),
    ],
)
def test_stamps_with_their_zone_are_read(text, expected):
    assert parse_utc(text) == expected
    assert is_utc_stamp(text)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-27T10:58:30",  # no zone: pdb-sync never writes one, and a guess is hours off
        "2026-11-27",
        "2026-13-01T00:00:00Z",  # the schemas' pattern lets these through
        "2026-11-27T25:00:00Z",
        "\u0662\u0660\u0662\u0666-11-27T10:58:30Z",  # other scripts' digits
        "2026-11-27T10:58:30z",
        "2026-11-27T10:58:30ZZ",
        " 2026-11-27T10:58:30Z",
        "",
        None,
        1764240000,
    ],
)
def test_everything_else_is_refused_with_what_was_given(value):
    with pytest.raises(ValueError, match=r"expected .*got") as caught:
        parse_utc(value)
    assert repr(value) in str(caught.value)
    assert not is_utc_stamp(value)


def test_a_stamp_without_its_zone_is_still_iso_for_people():
    """What a person types (--deadline) or squeue prints has no zone: parse_iso takes it
    and unix_seconds reads it as this machine's local time."""
    naive = parse_iso("2026-01-01T06:00")
    assert naive.tzinfo is None
    assert unix_seconds(naive) == time.mktime((2026, 1, 1, 6, 0, 0, 0, 0, -1))
    aware = parse_iso("2026-01-01T06:00+01:00")
    assert unix_seconds(aware) == datetime(2026, 1, 1, 5, 0, tzinfo=UTC).timestamp()


def test_a_time_the_machine_cannot_place_is_a_value_error(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # east of UTC: year 1's midnight is year 0
    time.tzset()
    try:
        with pytest.raises(ValueError, match="not a time this machine can represent"):
            unix_seconds(datetime(1, 1, 1))
    finally:
        monkeypatch.undo()
        time.tzset()


def test_what_is_written_reads_back():
    stamp = utc_now()
    assert stamp.endswith("Z") and len(stamp) == len("2026-11-27T10:58:30.123Z")
    assert format_utc(parse_utc(stamp)) == stamp
    assert format_utc(parse_utc("2026-11-27T12:58:30.1+02:00")) == "2026-11-27T10:58:30.100Z"


def test_seconds_between_stamps_never_negative():
    assert seconds_between("2026-01-01T00:00:00Z", "2026-01-01T00:01:30.5Z") == 90.5
    assert seconds_between("2026-01-01T02:00:00+02:00", "2026-01-01T00:00:10Z") == 10
    assert seconds_between("2026-01-01T00:01:00Z", "2026-01-01T00:00:00Z") == 0.0
    with pytest.raises(ValueError, match="with its zone"):
        seconds_between("2026-01-01T00:00:00", "2026-01-01T00:00:10Z")
