"""Durations: the one parser and formatter of `30s`, `5m`, `1h`, `2d`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from handsoff.model.durations import format_duration, parse_duration
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5 minutes", "5", "m", "1.5h", "-1h", "1w", "", " 5m"])
def test_parse_duration_rejects_other_text(text):
    with pytest.raises(ValueError, match="is not a duration like 30s, 5m, 1h or 2d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(0), "0s"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(seconds=90.9), "1m30s"),
    ],
)
def test_format_duration(value, expected):
    assert format_duration(value) == expected


def test_format_duration_rejects_negative():
    with pytest.raises(ValueError, match="negative duration"):
        format_duration(timedelta(seconds=-1))


@settings(max_examples=50)
@given(st.integers(min_value=0, max_value=10**8))
def test_format_then_parse_round_trips_each_unit(seconds):
    text = format_duration(timedelta(seconds=seconds))
    total = sum(parse_duration(part + unit).total_seconds() for part, unit in _split(text))

    assert total == seconds


def _split(text: str) -> list[tuple[str, str]]:
    parts, number = [], ""
    for char in text:
        if char.isdigit():
            number += char
        else:
            parts.append((number, char))
            number = ""
    return parts
