"""Deployment windows: when a pipeline may deploy, as pure functions of an instant (no Airflow here).

A window spec has a required IANA ``timezone``; every local time is wall-clock time in it.
- ``allow``: rules ``{"days": ["mon", "tue"], "start": "09:00", "end": "16:00"}`` open on each listed
  day at ``start``; an ``end`` at or before the ``start`` is on the next day; "24:00" ends the day.
  No rules: always open (but for ``deny`` and ``holidays``).
- ``deny``: ``{"from", "to", "reason"?}``; dates "YYYY-MM-DD" close whole local days, both inclusive;
  local date-times "YYYY-MM-DDTHH:MM" close from instant to instant, ``to`` excluded.
- ``holidays``: ``{"country": "US", "subdivision": "CA"}`` closes each public holiday's local day.
  Deny ranges and holidays beat allow rules.
- ``min_remaining`` ("30m"; <n><s|m|h|d>; default 0): ``can_start`` needs that long before the next
  close; ``is_open`` ignores it.
- DST: a wall time in a spring-forward gap means the first instant after the gap, an ambiguous one its
  first occurrence (starts, ends and deny bounds alike): a window never opens twice nor is skipped, but
  a rule wholly inside a gap (02:00-02:30 that day) is empty.
- Open time is a union of half-open intervals [open, close); touching ones merge (24:00 then 00:00 does
  not close). Searches stop after 400 days without an opening (``next_open`` raises ValueError) or a
  close (``next_close`` and ``openings`` raise). Methods take aware datetimes (naive: ValueError) and
  return datetimes in the window's zone.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handsoff.model.durations import format_duration, parse_duration

HORIZON_DAYS = 400
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([0-9]{2}):([0-9]{2})$")
_BOUND = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2})?$")  # a date or a local date-time
_KEYS = {"timezone", "allow", "deny", "holidays", "min_remaining"}
_DAY = timedelta(days=1)

_Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class _Rule:
    days: frozenset[int]  # 0 = monday
    start: int  # minutes after local midnight, 0..1439
    end: int  # minutes after local midnight, 0..1440; at or before start: on the next day


@dataclass(frozen=True, order=True)
class _Deny:
    start: datetime  # UTC
    end: datetime  # UTC
    reason: str


_ALWAYS = (_Rule(frozenset(range(7)), 0, 1440),)


@dataclass(frozen=True)
class DeploymentWindow:
    """A parsed window spec; build it with ``from_spec``."""

    name: str
    zone: ZoneInfo
    rules: tuple[_Rule, ...]
    denies: tuple[_Deny, ...]
    holidays: tuple[str, str | None] | None
    min_remaining: timedelta
    spec_json: str = field(repr=False)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], name: str = "") -> DeploymentWindow:
        """Parse and validate a window spec; raises ValueError naming the window and the field."""
        try:
            return _parse(spec, name)
        except ValueError as error:
            raise ValueError(f"window {name!r}: {error}") from None

    def to_spec(self) -> dict[str, Any]:
        """The spec this window was parsed from (a fresh copy)."""
        return json.loads(self.spec_json)

    def is_open(self, dt: datetime) -> bool:
        """Whether deploying is allowed at ``dt`` (ignores ``min_remaining``)."""
        now = _utc(dt)
        return any(s <= now < e for s, e in _open_pieces(self, self._local_date(now)))

    def can_start(self, dt: datetime) -> bool:
        """Open at ``dt`` with at least ``min_remaining`` before the next close."""
        now = _utc(dt)
        if not self.min_remaining or not self.is_open(now):
            return self.is_open(now)
        end = next(self._intervals(now))[1]
        return end is None or end - now >= self.min_remaining

    def next_open(self, dt: datetime) -> datetime:
        """The earliest open instant at or after ``dt`` (``dt`` itself when open)."""
        now = _utc(dt)
        day = self._local_date(now)
        for _ in range(HORIZON_DAYS + 1):
            for s, e in _open_pieces(self, day):
                if e > now:
                    return max(s, now).astimezone(self.zone)
            day += _DAY
        raise ValueError(f"window {self.name!r} never opens within {HORIZON_DAYS} days of {dt}")

    def next_close(self, dt: datetime) -> datetime:
        """When open, the first closed instant after ``dt``; when closed, the close after the next opening."""
        return self.openings(dt, 1)[0][1]

    def openings(self, dt: datetime, n: int) -> list[tuple[datetime, datetime]]:
        """The next ``n`` open intervals (open, close); the first starts at ``dt`` when open at ``dt``."""
        now, found = _utc(dt), []
        intervals = self._intervals(now)
        while len(found) < n:
            start, end = next(intervals)
            if end is None:
                raise ValueError(f"window {self.name!r} never closes within {HORIZON_DAYS} days of {start}")
            found.append((max(start, now).astimezone(self.zone), end.astimezone(self.zone)))
        return found

    def state(self, dt: datetime) -> str:
        """One line for humans: "open until ...", "closed (year-end freeze) until ..."."""
        now = _utc(dt)
        if self.is_open(now):
            end = next(self._intervals(now))[1]
            if end is None:
                return f"open, no close within {HORIZON_DAYS} days"
            late = end - now < self.min_remaining
            short = f" (less than {format_duration(self.min_remaining)} left)" if late else ""
            return f"open until {end.astimezone(self.zone):%Y-%m-%d %H:%M %Z}{short}"
        reason = self._closed_reason(now)
        closed = f"closed ({reason})" if reason else "closed"
        try:
            return f"{closed} until {self.next_open(now):%Y-%m-%d %H:%M %Z}"
        except ValueError:
            return f"{closed}, no opening within {HORIZON_DAYS} days"

    def summary(self) -> str:
        """Compact description, like "mon-thu 09:00-16:00 America/Los_Angeles, holidays US-CA, 2 freezes"."""
        parts = [f"{' and '.join(map(_describe, self.rules)) or 'any time'} {self.zone.key}"]
        parts += [f"holidays {'-'.join(filter(None, self.holidays))}"] if self.holidays else []
        parts += [f"{len(self.denies)} freeze{'s' * (len(self.denies) > 1)}"] if self.denies else []
        parts += [f"min {format_duration(self.min_remaining)}"] if self.min_remaining else []
        return ", ".join(parts)

    def _local_date(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def _intervals(self, now: datetime) -> Iterator[tuple[datetime, datetime | None]]:
        """Merged open UTC intervals ending after ``now``, in order; end None: still open at the horizon."""
        day, start, end, quiet = self._local_date(now), None, None, 0
        while quiet <= HORIZON_DAYS:
            for s, e in _open_pieces(self, day):
                if start is not None and s > end:  # closed between two pieces
                    if end > now:
                        yield start, end
                    start = None
                if start is None:
                    start, quiet = s, 0
                end = e
            day += _DAY
            if start is not None and end < _instant(self.zone, day, 0):  # closed before midnight
                if end > now:
                    yield start, end
                start, quiet = None, 0
            quiet += 1
        if start is None:
            raise ValueError(f"window {self.name!r} never opens within {HORIZON_DAYS} days of {now}")
        yield start, None

    def _closed_reason(self, now: datetime) -> str:
        """The deny reason or holiday name covering ``now``, if any."""
        for deny in self.denies:
            if deny.start <= now < deny.end and deny.reason:
                return deny.reason
        return self._holiday(self._local_date(now)) or ""

    def _holiday(self, day: date) -> str | None:
        return _calendar(*self.holidays, day.year).get(day) if self.holidays else None


@functools.lru_cache(maxsize=8192)
def _open_pieces(window: DeploymentWindow, day: date) -> tuple[_Interval, ...]:
    """Open UTC intervals of a local day, sorted: its allow rules and the previous day's, clipped to the
    day, minus deny ranges; none on a holiday."""
    lo, hi = _instant(window.zone, day, 0), _instant(window.zone, day + _DAY, 0)
    if lo >= hi or window._holiday(day):
        return ()
    allowed = []
    for opening in (day - _DAY, day):
        for rule in window.rules or _ALWAYS:
            if opening.weekday() in rule.days:
                closing = opening + _DAY if rule.end <= rule.start else opening
                s = max(lo, _instant(window.zone, opening, rule.start))
                e = min(hi, _instant(window.zone, closing, rule.end))
                if s < e:
                    allowed.append((s, e))
    cuts = [(max(d.start, lo), min(d.end, hi)) for d in window.denies if d.start < hi and d.end > lo]
    return tuple(_subtract(_merge(allowed), cuts))


def _merge(intervals: list[_Interval]) -> list[_Interval]:
    merged: list[_Interval] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _subtract(intervals: list[_Interval], cuts: list[_Interval]) -> Iterator[_Interval]:
    """``intervals`` minus ``cuts``; both sorted by start."""
    for s, e in intervals:
        for cut_start, cut_end in cuts:
            if cut_start < e and cut_end > s:
                if cut_start > s:
                    yield s, cut_start
                s = max(s, cut_end)
        if s < e:
            yield s, e


def _instant(zone: ZoneInfo, day: date, minutes: int) -> datetime:
    """UTC instant of a local wall time: its first occurrence if ambiguous, the end of the gap if skipped."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # in a gap: bisect (in whole seconds) between the wall time read with either offset for the change
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = sorted((int(first.timestamp()), int(other.timestamp())))
    before = datetime.fromtimestamp(lo, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if datetime.fromtimestamp(mid, zone).utcoffset() == before else (lo, mid)
    return datetime.fromtimestamp(hi, UTC)


@functools.lru_cache(maxsize=256)
def _calendar(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    """Public holidays of one year, by local date."""
    import holidays

    return dict(holidays.country_holidays(country, subdiv=subdivision, years=year))


def _utc(dt: datetime) -> datetime:
    if not isinstance(dt, datetime) or dt.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got {dt!r}")
    return dt.astimezone(UTC)


def _describe(rule: _Rule) -> str:
    """Runs of consecutive days, then local times: "mon-thu,sat 09:00-16:00"."""
    runs: list[list[int]] = []
    for day in sorted(rule.days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1][1:] = [day]  # a run keeps its first and last day
        else:
            runs.append([day])
    days = ",".join("-".join(DAYS[d] for d in run) for run in runs)
    return f"{days} {rule.start // 60:02d}:{rule.start % 60:02d}-{rule.end // 60:02d}:{rule.end % 60:02d}"


# --- parsing: each helper raises ValueError("<json path>: <problem>") -----------------------------------


def _parse(spec: dict[str, Any], name: str) -> DeploymentWindow:
    if not isinstance(spec, dict):
        raise ValueError(f"a window must be an object, got {spec!r}")
    if unknown := sorted(set(spec) - _KEYS):
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(_KEYS))}")
    zone = _zone(spec.get("timezone"))
    rules = tuple(_rule(rule, f"allow[{i}]") for i, rule in enumerate(_list(spec, "allow")))
    denies = tuple(sorted(_deny(d, f"deny[{i}]", zone) for i, d in enumerate(_list(spec, "deny"))))
    region = _region(spec["holidays"]) if spec.get("holidays") is not None else None
    remaining = _duration(spec.get("min_remaining", "0s"))
    return DeploymentWindow(name, zone, rules, denies, region, remaining, json.dumps(spec, sort_keys=True))


def _list(spec: dict[str, Any], key: str) -> list[Any]:
    if not isinstance(value := spec.get(key) or [], list):
        raise ValueError(f"{key}: must be a list, got {value!r}")
    return value


def _fields(value: Any, path: str, required: Set[str], optional: Set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: must be an object, got {value!r}")
    if missing := sorted(required - set(value)):
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    if unknown := sorted(set(value) - required - optional):
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}")
    return value


def _zone(key: Any) -> ZoneInfo:
    if not isinstance(key, str) or not key:
        raise ValueError(f"timezone: an IANA zone name like 'America/Los_Angeles' is required, got {key!r}")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown zone {key!r}") from None


def _rule(value: Any, path: str) -> _Rule:
    rule = _fields(value, path, {"days", "start", "end"})
    days = rule["days"]
    if not isinstance(days, list) or not days:
        raise ValueError(f"{path}.days: must be a non-empty list of {', '.join(DAYS)}")
    if bad := [day for day in days if day not in DAYS]:
        raise ValueError(f"{path}.days: {bad[0]!r} is not a day; use {', '.join(DAYS)}")
    start = _minutes(rule["start"], f"{path}.start")
    if start == 1440:
        raise ValueError(f"{path}.start: 24:00 is only allowed as an end")
    return _Rule(frozenset(DAYS.index(d) for d in days), start, _minutes(rule["end"], f"{path}.end"))


def _minutes(text: Any, path: str) -> int:
    match = _HHMM.match(text) if isinstance(text, str) else None
    hours, minutes = (int(match.group(1)), int(match.group(2))) if match else (99, 99)
    if not ((hours < 24 and minutes < 60) or (hours, minutes) == (24, 0)):
        raise ValueError(f"{path}: {text!r} is not a time like 09:00 (00:00-23:59, or 24:00 as an end)")
    return hours * 60 + minutes


def _deny(value: Any, path: str, zone: ZoneInfo) -> _Deny:
    deny = _fields(value, path, {"from", "to"}, {"reason"})
    start, end = _wall(deny["from"], f"{path}.from", False), _wall(deny["to"], f"{path}.to", True)
    if start >= end:
        raise ValueError(f"{path}: from {deny['from']!r} is not before to {deny['to']!r}")
    if not isinstance(reason := deny.get("reason", ""), str):
        raise ValueError(f"{path}.reason: must be a string, got {reason!r}")
    return _Deny(*(_instant(zone, w.date(), w.hour * 60 + w.minute) for w in (start, end)), reason)


def _wall(text: Any, path: str, is_end: bool) -> datetime:
    """Local wall time of a deny bound; a date ``to`` means the end of that day."""
    match = _BOUND.match(text) if isinstance(text, str) else None
    try:
        wall = datetime.fromisoformat(text) if match else None
    except ValueError:
        wall = None
    if wall is None:
        raise ValueError(f"{path}: {text!r} is not a date (2026-12-21) or local date-time (2026-12-21T09:00)")
    return wall + _DAY if is_end and not match.group(1) else wall


def _region(value: Any) -> tuple[str, str | None]:
    region = _fields(value, "holidays", {"country"}, {"subdivision"})
    country, subdivision = region["country"], region.get("subdivision")
    if not isinstance(country, str) or not isinstance(subdivision, str | None):
        raise ValueError(f"holidays: country and subdivision must be strings: {country!r}, {subdivision!r}")
    try:
        _calendar(country, subdivision, 2026)
    except NotImplementedError as error:
        raise ValueError(f"holidays: {error}") from None
    return country, subdivision


def _duration(text: Any) -> timedelta:
    """`min_remaining` as a timedelta; ValueError naming the field."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ValueError(f"min_remaining: {error}") from None
