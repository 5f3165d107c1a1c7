"""The window timetable: a run at each opening, across weekends, holidays, freezes and DST; serialization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from airflow.exceptions import AirflowTimetableInvalid
from airflow.timetables.base import DataInterval, TimeRestriction
from handsoff.timetables.window import DeploymentWindowTimetable

LA = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")
BUSINESS = {
    "timezone": "America/Los_Angeles",
    "allow": [{"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
    "deny": [
        {"from": "2026-12-21", "to": "2027-01-04", "reason": "year-end freeze"},
        {"from": "2026-11-24T08:00", "to": "2026-11-24T10:00", "reason": "launch"},
    ],
    "holidays": {"country": "US", "subdivision": "CA"},
    "min_remaining": "30m",
}


def la(*args: int) -> datetime:
    return datetime(*args, tzinfo=LA)


def runs(
    timetable: DeploymentWindowTimetable, earliest: datetime, count: int, **restriction
) -> list[datetime]:
    """The first `count` scheduled runs (catchup: a pure function of its inputs), in the window's zone."""
    limits = TimeRestriction(earliest=earliest, latest=restriction.get("latest"), catchup=True)
    found, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=limits)
        if info is None:
            break
        assert info.data_interval == DataInterval(info.run_after, info.run_after)  # exact runs
        found.append(info.run_after.astimezone(LA))
        last = info.data_interval
    return found


@pytest.fixture(scope="module")
def business() -> DeploymentWindowTimetable:
    return DeploymentWindowTimetable(BUSINESS, "business-hours")


def test_one_run_per_opening_skipping_the_weekend_and_thanksgiving(business):
    # Fri 2026-11-20: the next opening is Monday; the launch freeze moves Tuesday's to 10:00;
    # Thursday 26 is Thanksgiving; Friday to Sunday are not allowed.
    assert runs(business, la(2026, 11, 20, 12, 0), 5) == [
        la(2026, 11, 23, 9, 0),
        la(2026, 11, 24, 10, 0),
        la(2026, 11, 25, 9, 0),
        la(2026, 11, 30, 9, 0),
        la(2026, 12, 1, 9, 0),
    ]


def test_the_year_end_freeze_and_new_year_holiday_are_skipped(business):
    # the freeze covers 2026-12-21 to 2027-01-04 inclusive (a Monday)
    assert runs(business, la(2026, 12, 17, 9, 0), 3) == [
        la(2026, 12, 17, 9, 0),
        la(2027, 1, 5, 9, 0),
        la(2027, 1, 6, 9, 0),
    ]


def test_openings_keep_local_time_across_daylight_saving(business):
    found = runs(business, la(2027, 3, 11, 10, 0), 2)  # the US springs forward on Sunday 2027-03-14
    assert found == [la(2027, 3, 15, 9, 0), la(2027, 3, 16, 9, 0)]
    assert [f.astimezone(UTC).hour for f in found] == [16, 16]  # 17:00 UTC before the change
    found = runs(business, la(2026, 10, 28, 10, 0), 2)  # and falls back on Sunday 2026-11-01
    assert [f.astimezone(UTC).hour for f in found] == [16, 17]


def test_a_start_in_the_spring_forward_gap_opens_at_the_first_instant_after_it():
    london = DeploymentWindowTimetable(
        {"timezone": "Europe/London", "allow": [{"days": ["sun"], "start": "01:30", "end": "03:00"}]}, "night"
    )
    # 2027-03-28 01:00 GMT -> 02:00 BST: 01:30 does not exist that day, 02:00 BST is the first instant after
    [found] = runs(london, datetime(2027, 3, 27, tzinfo=LONDON), 1)
    assert found.astimezone(UTC) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    # an ambiguous fall-back start (2026-10-25 01:30 happens twice) means its first occurrence (BST)
    [found] = runs(london, datetime(2026, 10, 24, tzinfo=LONDON), 1)
    assert found.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_window_open_across_midnight_opens_once():
    nights = DeploymentWindowTimetable(
        {
            "timezone": "UTC",
            "allow": [
                {"days": ["mon", "tue"], "start": "22:00", "end": "24:00"},
                {"days": ["tue", "wed"], "start": "00:00", "end": "02:00"},
            ],
        },
        "nights",
    )
    found = runs(nights, datetime(2026, 11, 23, tzinfo=UTC), 3)  # a Monday
    assert [f.astimezone(UTC) for f in found] == [
        datetime(2026, 11, 23, 22, 0, tzinfo=UTC),  # Mon 22:00 to Tue 02:00 is one interval: no run at 00:00
        datetime(2026, 11, 24, 22, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 22, 0, tzinfo=UTC),
    ]


def test_no_run_after_the_latest_date_nor_for_a_window_that_never_reopens(business):
    assert runs(business, la(2026, 11, 20), 5, latest=la(2026, 11, 24, 9, 30)) == [la(2026, 11, 23, 9, 0)]
    opens_once = DeploymentWindowTimetable(
        {"timezone": "UTC", "deny": [{"from": "2026-01-01", "to": "2026-11-30", "reason": "closed"}]}, "once"
    )
    assert [f.astimezone(UTC) for f in runs(opens_once, datetime(2026, 6, 1, tzinfo=UTC), 3)] == [
        datetime(2026, 12, 1, tzinfo=UTC)  # open for good afterwards: no second opening
    ]


def test_without_catchup_the_next_run_is_at_the_next_opening_never_in_the_past():
    daily = DeploymentWindowTimetable(
        {
            "timezone": "UTC",
            "allow": [
                {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "00:01"}
            ],
        },
        "daily",
    )
    now = datetime.now(UTC)
    info = daily.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(now - timedelta(days=30)),
        restriction=TimeRestriction(earliest=datetime(2026, 1, 1, tzinfo=UTC), latest=None, catchup=False),
    )
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # the opening of today's interval if it is still open, else tomorrow's: missed days are not run
    assert info.run_after in (midnight, midnight + timedelta(days=1))
    assert info.run_after >= now - timedelta(minutes=1)


def test_without_catchup_a_window_open_now_runs_at_its_opening_once():
    now = datetime.now(UTC)
    opened = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    freeze = {
        "from": (opened - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "to": opened.strftime("%Y-%m-%dT%H:%M"),
    }
    thawed = DeploymentWindowTimetable({"timezone": "UTC", "deny": [freeze]}, "thawed")  # open for good since
    limits = TimeRestriction(earliest=datetime(2026, 1, 1, tzinfo=UTC), latest=None, catchup=False)

    first = thawed.next_dagrun_info(last_automated_data_interval=None, restriction=limits)

    assert first.run_after == opened  # missed while the scheduler was down: runs now, late
    assert (
        thawed.next_dagrun_info(last_automated_data_interval=first.data_interval, restriction=limits) is None
    )


def test_summary_description_and_manual_runs(business):
    assert business.summary == "window business-hours (America/Los_Angeles)"
    assert business.description == (
        "At each opening of deployment window business-hours: "
        "mon-thu 09:00-16:00 America/Los_Angeles, holidays US-CA, 2 freezes, min 30m"
    )
    at = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
    assert business.infer_manual_data_interval(run_after=at) == DataInterval(at, at)


def test_serialize_round_trip(business):
    data = business.serialize()
    assert data == {"name": "business-hours", "window": BUSINESS}
    again = DeploymentWindowTimetable.deserialize(data)
    assert again == business and again.serialize() == data
    assert runs(again, la(2026, 11, 20), 3) == runs(business, la(2026, 11, 20), 3)


def test_an_invalid_window_fails_validation():
    broken = DeploymentWindowTimetable({"timezone": "Mars/Olympus_Mons"}, "broken")
    with pytest.raises(AirflowTimetableInvalid, match="unknown zone 'Mars/Olympus_Mons'"):
        broken.validate()
    assert (
        broken.next_dagrun_info(
            last_automated_data_interval=None, restriction=TimeRestriction(la(2026, 1, 1), None, True)
        )
        is None
    )


def test_the_dag_serializes_with_it_through_the_plugin():
    from airflow import plugins_manager
    from airflow.serialization.serialized_objects import DagSerialization
    from handsoff.factory.pipeline_dag import build_dag
    from handsoff.spec import load_pipeline
    from support.repos import EXAMPLES_SPECS

    dag = build_dag(load_pipeline(EXAMPLES_SPECS / "greeter-config.json", EXAMPLES_SPECS))

    registered = plugins_manager.get_timetables_plugins()
    assert registered["handsoff.timetables.window.DeploymentWindowTimetable"] is DeploymentWindowTimetable
    data = DagSerialization.to_dict(dag)
    assert data["dag"]["timetable"]["__type"] == "handsoff.timetables.window.DeploymentWindowTimetable"
    back = DagSerialization.from_dict(data)
    assert isinstance(back.timetable, DeploymentWindowTimetable)
    assert back.timetable == dag.timetable
    assert back.timetable.summary == "window business-hours (America/Los_Angeles)"
