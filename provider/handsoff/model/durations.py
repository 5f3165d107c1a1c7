"""Durations as written in specs: a whole number and a unit, like 30s, 5m, 1h or 2d.

The one parser and formatter of durations: the spec layer, the windows, the tasks and the CLI use it.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """``"5m"`` → ``timedelta(minutes=5)``; raises ValueError on anything else."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h or 2d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def format_duration(value: timedelta, *, zero: str = "0s") -> str:
    """Compact form of a duration, largest units first: ``"1h30m"``, ``"45s"``, `zero` for nothing.

    Fractions of a second are dropped; negative durations raise ValueError.
    """
    seconds = int(value.total_seconds())
    if seconds < 0:
        raise ValueError(f"negative duration: {value}")
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or zero
