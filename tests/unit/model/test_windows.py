"""Deployment windows: concrete calendar cases, DST edges, bad specs, and properties over random windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from handsoff.model.windows import DAYS, DeploymentWindow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LA = ZoneInfo("America/Los_Angeles")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
TICK = timedelta(microseconds=1)
BUSINESS = {
    "timezone": "America/Los_Angeles",
    "allow": [{"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
    "deny": [
        {"from": "2026-12-21", "to": "2027-01-04", "reason": "year-end freeze"},
        {"from": "2026-11-24T12:00", "to": "2026-11-24T13:00", "reason": "launch"},
    ],
    "holidays": {"country": "US", "subdivision": "CA"},
    "min_remaining": "30m",
}


def window(allow: list | None = None, zone: str = "America/Los_Angeles", **extra: object) -> DeploymentWindow:
    return DeploymentWindow.from_spec({"timezone": zone, "allow": allow or [], **extra}, name="w")


def rule(days: str, start: str, end: str) -> dict:
    return {"days": days.split(","), "start": start, "end": end}


def before(instant: datetime) -> datetime:
    """The instant just before; computed in UTC, since same-zone arithmetic is wall-clock arithmetic."""
    return instant.astimezone(UTC) - TICK


def in_utc(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    return [(s.astimezone(UTC), e.astimezone(UTC)) for s, e in intervals]


def la(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=LA, fold=fold)


@pytest.fixture(scope="module")
def business() -> DeploymentWindow:
    return DeploymentWindow.from_spec(BUSINESS, name="business-hours")


# --- concrete cases ------------------------------------------------------------------------------------


def test_business_hours_edges(business: DeploymentWindow) -> None:
    assert business.is_open(la(2026, 11, 23, 9, 0))  # start inclusive
    assert not business.is_open(before(la(2026, 11, 23, 9, 0)))
    assert business.is_open(before(la(2026, 11, 23, 16, 0)))
    assert not business.is_open(la(2026, 11, 23, 16, 0))  # end exclusive
    assert business.next_close(la(2026, 11, 23, 10, 0)) == la(2026, 11, 23, 16, 0)


def test_friday_and_weekend_are_closed(business: DeploymentWindow) -> None:
    for day in (20, 21, 22):  # Fri, Sat, Sun
        assert not business.is_open(la(2026, 11, day, 12, 0))
    assert business.next_open(la(2026, 11, 20, 12, 0)) == la(2026, 11, 23, 9, 0)
    assert business.state(la(2026, 11, 21, 12, 0)) == "closed until 2026-11-23 09:00 PST"


def test_holiday_closes_the_whole_day(business: DeploymentWindow) -> None:
    thanksgiving = la(2026, 11, 26, 10, 0)  # a Thursday
    assert not business.is_open(thanksgiving)
    assert business.state(thanksgiving) == "closed (Thanksgiving Day) until 2026-11-30 09:00 PST"


def test_date_deny_includes_its_last_day(business: DeploymentWindow) -> None:
    assert business.is_open(la(2026, 12, 17, 15, 0))
    assert not business.is_open(la(2026, 12, 21, 9, 0))
    assert not business.is_open(la(2027, 1, 4, 15, 0))  # a Monday, the last day of the freeze
    assert business.next_open(la(2026, 12, 22, 10, 0)) == la(2027, 1, 5, 9, 0)
    assert business.state(la(2027, 1, 4, 10, 0)) == "closed (year-end freeze) until 2027-01-05 09:00 PST"
    assert business.next_close(la(2026, 12, 17, 15, 0)) == la(2026, 12, 17, 16, 0)


def test_datetime_deny_beats_allow(business: DeploymentWindow) -> None:
    assert business.is_open(before(la(2026, 11, 24, 12, 0)))
    assert not business.is_open(la(2026, 11, 24, 12, 0))
    assert not business.is_open(before(la(2026, 11, 24, 13, 0)))
    assert business.is_open(la(2026, 11, 24, 13, 0))
    assert business.next_close(la(2026, 11, 24, 10, 0)) == la(2026, 11, 24, 12, 0)
    assert business.state(la(2026, 11, 24, 12, 30)) == "closed (launch) until 2026-11-24 13:00 PST"
    assert business.openings(la(2026, 11, 24, 10, 0), 2) == [
        (la(2026, 11, 24, 10, 0), la(2026, 11, 24, 12, 0)),
        (la(2026, 11, 24, 13, 0), la(2026, 11, 24, 16, 0)),
    ]


def test_min_remaining_and_can_start(business: DeploymentWindow) -> None:
    assert business.min_remaining == timedelta(minutes=30)
    assert business.can_start(la(2026, 11, 23, 15, 30))  # exactly 30 minutes left
    assert not business.can_start(la(2026, 11, 23, 15, 31))
    assert business.is_open(la(2026, 11, 23, 15, 31))
    assert not business.can_start(la(2026, 11, 21, 12, 0))
    assert business.state(la(2026, 11, 23, 15, 45)) == "open until 2026-11-23 16:00 PST (less than 30m left)"
    assert business.state(la(2026, 11, 23, 10, 0)) == "open until 2026-11-23 16:00 PST"


def test_midnight_crossing_rule() -> None:
    w = window([rule("fri", "22:00", "02:00")])
    assert not w.is_open(la(2026, 11, 20, 21, 59))
    assert w.is_open(la(2026, 11, 20, 23, 0))
    assert w.is_open(la(2026, 11, 21, 1, 59))
    assert not w.is_open(la(2026, 11, 21, 2, 0))
    assert not w.is_open(la(2026, 11, 21, 23, 0))  # Saturday is not listed
    assert w.next_close(la(2026, 11, 20, 22, 0)) == la(2026, 11, 21, 2, 0)


def test_end_at_or_before_start_crosses_midnight() -> None:
    w = window([rule("mon", "09:00", "09:00")])
    assert w.openings(la(2026, 11, 23, 0, 0), 1) == [(la(2026, 11, 23, 9, 0), la(2026, 11, 24, 9, 0))]


def test_24_00_ends_at_midnight() -> None:
    w = window([rule("mon", "20:00", "24:00")])
    assert w.is_open(before(la(2026, 11, 24, 0, 0)))
    assert not w.is_open(la(2026, 11, 24, 0, 0))
    assert w.next_close(la(2026, 11, 23, 21, 0)) == la(2026, 11, 24, 0, 0)


def test_next_close_merges_across_midnight() -> None:
    w = window([rule("mon", "20:00", "24:00"), rule("tue", "00:00", "03:00")])
    assert w.next_close(la(2026, 11, 23, 21, 0)) == la(2026, 11, 24, 3, 0)
    assert w.openings(la(2026, 11, 23, 0, 0), 1) == [(la(2026, 11, 23, 20, 0), la(2026, 11, 24, 3, 0))]
    daily = window([rule(",".join(DAYS), "00:00", "24:00")], holidays={"country": "US"})
    assert daily.next_close(la(2026, 11, 23, 12, 0)) == la(2026, 11, 26, 0, 0)  # Thanksgiving


def test_no_allow_means_open_except_deny() -> None:
    w = window(deny=[{"from": "2026-11-25", "to": "2026-11-25"}])
    assert w.is_open(la(2026, 11, 22, 3, 0))
    assert w.next_close(la(2026, 11, 22, 3, 0)) == la(2026, 11, 25, 0, 0)
    assert w.next_open(la(2026, 11, 25, 12, 0)) == la(2026, 11, 26, 0, 0)
    assert w.state(la(2026, 11, 25, 12, 0)) == "closed until 2026-11-26 00:00 PST"


def test_always_open_never_closes() -> None:
    w = window(min_remaining="1h")
    assert w.is_open(la(2026, 1, 1)) and w.can_start(la(2026, 1, 1))
    assert w.state(la(2026, 1, 1)) == "open, no close within 400 days"
    with pytest.raises(ValueError, match="never closes within 400 days"):
        w.next_close(la(2026, 1, 1))


def test_never_opens_within_the_horizon() -> None:
    w = window(
        [rule("mon", "09:00", "10:00")], deny=[{"from": "2026-01-01", "to": "2028-01-01", "reason": "x"}]
    )
    with pytest.raises(ValueError, match="never opens within 400 days"):
        w.next_open(la(2026, 1, 1))
    assert w.state(la(2026, 1, 1)) == "closed (x), no opening within 400 days"
    assert w.next_open(la(2027, 12, 1)) == la(2028, 1, 3, 9, 0)


def test_spring_forward_gap_start_opens_after_the_gap() -> None:
    w = window([rule("sun", "02:30", "04:00")])
    opened = w.next_open(la(2026, 3, 8, 0, 0))
    assert opened == datetime(2026, 3, 8, 10, 0, tzinfo=UTC)  # 03:00 PDT
    assert (opened.hour, opened.minute, opened.tzname()) == (3, 0, "PDT")
    assert not w.is_open(before(opened))
    assert w.next_close(opened) == la(2026, 3, 8, 4, 0)


def test_fall_back_ambiguous_time_is_its_first_occurrence() -> None:
    w = window([rule("sun", "01:30", "01:45")])
    first = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)  # 01:30 PDT
    # compared in UTC: Python never finds an ambiguous local time equal to a datetime of another zone
    assert in_utc(w.openings(la(2026, 11, 1, 0, 0), 2)) == [
        (first, first + timedelta(minutes=15)),
        (datetime(2026, 11, 8, 9, 30, tzinfo=UTC), datetime(2026, 11, 8, 9, 45, tzinfo=UTC)),
    ]
    assert not w.is_open(la(2026, 11, 1, 1, 30, fold=1))  # 01:30 PST: not a second opening


def test_lord_howe_half_hour_shifts() -> None:
    w = window([rule("sun", "02:10", "03:00")], zone="Australia/Lord_Howe")
    opened = w.next_open(datetime(2026, 10, 4, 0, 0, tzinfo=LORD_HOWE))  # 02:00 +10:30 -> 02:30 +11
    assert (opened.hour, opened.minute, opened.utcoffset()) == (2, 30, timedelta(hours=11))
    assert w.next_close(opened).astimezone(UTC) - opened.astimezone(UTC) == timedelta(minutes=30)
    w = window([rule("sun", "01:40", "01:50")], zone="Australia/Lord_Howe")
    first = datetime(2026, 4, 4, 14, 40, tzinfo=UTC)  # 01:40 +11, before 02:00 +11 -> 01:30 +10:30
    assert in_utc(w.openings(datetime(2026, 4, 5, 0, 0, tzinfo=LORD_HOWE), 1)) == [
        (first, first + timedelta(minutes=10))
    ]


def test_results_are_in_the_window_zone(business: DeploymentWindow) -> None:
    opened = business.next_open(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    assert opened.tzinfo is LA and opened == la(2026, 11, 23, 9, 0)


def test_naive_datetimes_are_rejected(business: DeploymentWindow) -> None:
    naive = datetime(2026, 11, 23, 10, 0)
    for method in (
        business.is_open,
        business.next_open,
        business.next_close,
        business.state,
        business.can_start,
    ):
        with pytest.raises(ValueError, match="aware datetime"):
            method(naive)
    with pytest.raises(ValueError, match="aware datetime"):
        business.openings(naive, 1)


def test_summary_round_trip_and_hashing(business: DeploymentWindow) -> None:
    assert business.summary() == "mon-thu 09:00-16:00 America/Los_Angeles, holidays US-CA, 2 freezes, min 30m"
    assert window([rule("sat,sun,tue", "22:00", "24:00")]).summary() == (
        "tue,sat-sun 22:00-24:00 America/Los_Angeles"
    )
    assert window(zone="UTC").summary() == "any time UTC"
    assert business.to_spec() == BUSINESS
    again = DeploymentWindow.from_spec(business.to_spec(), name="business-hours")
    assert again == business and hash(again) == hash(business) and len({again, business}) == 1


def utc(**fields: object) -> dict:
    return {"timezone": "UTC", **fields}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: unknown zone 'Mars/Olympus'"),
        ({}, "timezone: an IANA zone name"),
        (utc(alow=[]), "unknown key"),
        (utc(allow=[rule("mon,fry", "09:00", "10:00")]), r"allow\[0\].days: 'fry' is not a day"),
        (utc(allow=[rule("mon", "9:00", "10:00")]), r"allow\[0\].start: '9:00' is not a time"),
        (utc(allow=[rule("mon", "09:00", "24:30")]), r"allow\[0\].end: '24:30' is not a time"),
        (utc(allow=[rule("mon", "24:00", "10:00")]), "24:00 is only allowed as an end"),
        (utc(allow=[{"days": ["mon"], "start": "09:00"}]), r"allow\[0\]: missing end"),
        (utc(deny=[{"from": "2026-12-02", "to": "2026-12-01"}]), "from '2026-12-02' is not before to"),
        (utc(deny=[{"from": "2026-02-30", "to": "2026-03-01"}]), "is not a date"),
        (utc(holidays={"country": "XX"}), "holidays: Country XX not available"),
        (utc(holidays={"country": "US", "subdivision": "ZZ"}), "subdivision ZZ"),
        (utc(min_remaining="30 minutes"), "min_remaining: '30 minutes' is not a duration"),
    ],
)
def test_bad_specs_raise_clear_errors(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"^window 'bad': .*{message}"):
        DeploymentWindow.from_spec(spec, name="bad")


# --- properties over random windows ----------------------------------------------------------------------
# Instants are compared and offset in UTC: datetimes sharing a zone compare and subtract by wall clock.

ZONES = ["America/Los_Angeles", "Europe/London", "Australia/Lord_Howe", "UTC"]
START, END = datetime(2026, 1, 1), datetime(2028, 12, 31)
PROPERTIES = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# wall times near DST changes (01:00-03:00) are drawn as often as any other
_minutes = st.one_of(st.integers(0, 1439), st.integers(60, 180), st.sampled_from([0, 120, 150]))
_rules = st.builds(
    lambda days, start, end: {"days": sorted(days, key=DAYS.index), "start": _hhmm(start), "end": _hhmm(end)},
    st.sets(st.sampled_from(DAYS), min_size=1),
    _minutes,
    st.one_of(_minutes, st.just(1440)),
)


@st.composite
def _denies(draw: st.DrawFn) -> dict:
    first = draw(st.datetimes(START, END)).replace(second=0, microsecond=0)
    if draw(st.booleans()):
        last = first.date() + timedelta(days=draw(st.integers(0, 10)))
        return {"from": first.date().isoformat(), "to": last.isoformat(), "reason": "freeze"}
    last = first + timedelta(minutes=draw(st.integers(1, 3 * 1440)))
    return {"from": first.strftime("%Y-%m-%dT%H:%M"), "to": last.strftime("%Y-%m-%dT%H:%M")}


@st.composite
def _windows(draw: st.DrawFn) -> DeploymentWindow:
    spec = {
        "timezone": draw(st.sampled_from(ZONES)),
        "allow": draw(st.lists(_rules, max_size=3)),
        "deny": draw(st.lists(_denies(), max_size=3)),
    }
    if draw(st.booleans()):
        spec["holidays"] = {"country": draw(st.sampled_from(["US", "GB", "AU"]))}
    return DeploymentWindow.from_spec(spec, name="random")


@st.composite
def _cases(draw: st.DrawFn) -> tuple[DeploymentWindow, datetime]:
    """A window and an instant (in UTC) drawn as a local time, folds included."""
    w = draw(_windows())
    return w, draw(st.datetimes(START, END, timezones=st.just(w.zone))).astimezone(UTC)


def _close(w: DeploymentWindow, t: datetime) -> datetime | None:
    try:
        return w.next_close(t).astimezone(UTC)
    except ValueError as error:
        assert "never closes" in str(error)
        return None


def _between(a: datetime, b: datetime, n: int = 20) -> list[datetime]:
    return [a + (b - a) * i // n for i in range(n)] + [b - TICK]


@PROPERTIES
@given(_cases())
def test_next_open_is_open_and_nothing_opens_before_it(case: tuple[DeploymentWindow, datetime]) -> None:
    w, t = case
    opened = w.next_open(t).astimezone(UTC)
    assert opened >= t and w.is_open(opened)
    assert (opened == t) == w.is_open(t)
    if opened > t:
        assert not any(w.is_open(x) for x in _between(t, opened))


@PROPERTIES
@given(_cases())
def test_next_close_is_closed_and_open_until_then(case: tuple[DeploymentWindow, datetime]) -> None:
    w, t = case
    closed = _close(w, t)
    if closed is not None:
        assert closed > t and not w.is_open(closed)
        opened = w.next_open(t).astimezone(UTC)
        assert opened < closed and all(w.is_open(x) for x in _between(opened, closed))


def _openings_past(w: DeploymentWindow, since: datetime, t: datetime) -> list[tuple[datetime, datetime]]:
    """Openings from ``since`` until one ends after ``t``, or until the window stays open for good."""
    n, intervals = 1, []
    while not intervals or intervals[-1][1] <= t:
        try:
            intervals = in_utc(w.openings(since, n))
        except ValueError as error:
            assert "never closes" in str(error)
            break
        n *= 2
    return intervals


@PROPERTIES
@given(_cases())
def test_is_open_iff_inside_an_opening(case: tuple[DeploymentWindow, datetime]) -> None:
    w, t = case
    intervals = _openings_past(w, t - timedelta(days=3), t)
    if intervals and intervals[-1][1] > t:
        assert any(s <= t < e for s, e in intervals) == w.is_open(t)
    else:  # past the last close, the window opens once and stays open
        last_close = intervals[-1][1] if intervals else t - timedelta(days=3)
        assert w.is_open(t) == (t >= w.next_open(last_close).astimezone(UTC))
    for (s, e), (next_s, _) in zip(intervals, intervals[1:], strict=False):
        assert s < e < next_s  # sorted, non-empty, and separated: touching intervals are merged
        assert w.is_open(s) and w.is_open(e - TICK) and not w.is_open(e) and not w.is_open(next_s - TICK)


@PROPERTIES
@given(_windows(), st.data())
def test_deny_beats_allow(w: DeploymentWindow, data: st.DataObject) -> None:
    for deny in w.denies:
        if deny.start < deny.end:
            inside = data.draw(
                st.datetimes(deny.start.replace(tzinfo=None), before(deny.end).replace(tzinfo=None))
            )
            for x in (deny.start, inside.replace(tzinfo=UTC), before(deny.end)):
                assert not w.is_open(x)


def _utc_oracle(spec: dict, t: datetime) -> bool:
    """is_open written directly from the spec, for UTC (no DST)."""
    for deny in spec["deny"]:
        start = datetime.fromisoformat(deny["from"]).replace(tzinfo=UTC)
        end = datetime.fromisoformat(deny["to"]).replace(tzinfo=UTC)
        end += timedelta(days=1) if len(deny["to"]) == 10 else timedelta()
        if start <= t < end:
            return False
    if "holidays" in spec:
        import holidays

        if t.date() in holidays.country_holidays(spec["holidays"]["country"], years=t.year):
            return False
    for r in spec["allow"] or [{"days": DAYS, "start": "00:00", "end": "24:00"}]:
        for day in (t.date() - timedelta(days=1), t.date()):
            start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
                minutes=_to_minutes(r["start"])
            )
            end = datetime.combine(day, datetime.min.time(), UTC) + timedelta(minutes=_to_minutes(r["end"]))
            end += timedelta(days=1) if end <= start else timedelta()
            if DAYS[day.weekday()] in r["days"] and start <= t < end:
                return True
    return False


def _to_minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


@PROPERTIES
@given(_windows(), st.datetimes(START, END))
def test_matches_a_direct_reading_of_the_spec_in_utc(w: DeploymentWindow, t: datetime) -> None:
    spec = {**w.to_spec(), "timezone": "UTC"}
    utc_window = DeploymentWindow.from_spec(spec)
    t = t.replace(tzinfo=UTC)
    assert utc_window.is_open(t) == _utc_oracle(spec, t)


def test_is_open_is_fast(business: DeploymentWindow) -> None:
    t = la(2026, 11, 23, 10, 0)
    began = datetime.now(UTC)
    for i in range(1000):
        business.is_open(t + timedelta(hours=i))
        business.next_open(t + timedelta(hours=i))
    assert datetime.now(UTC) - began < timedelta(seconds=1)
