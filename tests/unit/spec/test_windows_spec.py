"""Spec keys of deployment windows: `windows`, `schedule.window`, `execution.mode`, `window` on stages and
waves; what they resolve to, and every mistake reported with file and JSON path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from handsoff.spec import load_all, load_pipeline

BUSINESS_HOURS = {  # the issue's example, as written there
    "timezone": "America/Los_Angeles",
    "allow": [{"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
    "deny": [
        {"from": "2026-12-21", "to": "2027-01-04", "reason": "year-end freeze"},
        {"from": "2026-11-27T12:00", "to": "2026-11-27T18:00", "reason": "launch"},
    ],
    "holidays": {"country": "US", "subdivision": "CA"},
    "min_remaining": "30m",
}
NIGHTS = {"timezone": "Europe/London", "allow": [{"days": ["sat"], "start": "22:00", "end": "02:00"}]}


@pytest.fixture
def windowed(example: dict[str, Any]) -> dict[str, Any]:
    """The example spec with the issue's additions, plus a wave (prod.rest) with a window of its own."""
    example["windows"] = json.loads(json.dumps({"business-hours": BUSINESS_HOURS, "nights": NIGHTS}))
    example["schedule"] = {"window": "business-hours"}
    example["execution"] = {"mode": "superseded"}
    example["stages"][3]["window"] = "business-hours"
    example["stages"][3]["waves"][2]["window"] = "nights"
    return example


def problems(specs, document: dict[str, Any]) -> list[str]:
    path = specs.write("orders-api.json", document)
    errors = load_all(specs.root).errors
    assert {issue.file for issue in errors} == {str(path)}
    return [f"{issue.path}: {issue.message}" for issue in errors]


def test_the_issues_additions_validate_and_resolve(specs, windowed):
    pipeline = load_pipeline(specs.write("orders-api.json", windowed))

    assert sorted(pipeline.windows) == ["business-hours", "nights"]
    assert pipeline.windows["business-hours"].to_spec() == BUSINESS_HOURS
    assert pipeline.schedule_window is pipeline.windows["business-hours"]
    assert pipeline.execution_mode == "superseded"
    gated = {wave.name: wave.window and wave.window.name for stage in pipeline.stages for wave in stage.waves}
    assert gated == {
        "alpha": None,
        "beta": None,
        "gamma": None,
        "onebox": "business-hours",  # the stage's window
        "first-region": "business-hours",
        "rest": "nights",  # its own wins
    }


def test_without_windows_runs_are_triggered_only_and_superseded(specs, example):
    pipeline = load_pipeline(specs.write("orders-api.json", example))

    assert (dict(pipeline.windows), pipeline.schedule_window, pipeline.execution_mode) == (
        {},
        None,
        "superseded",
    )
    assert all(wave.window is None for stage in pipeline.stages for wave in stage.waves)


def test_naming_an_undefined_window_is_an_error_at_its_path(specs, windowed):
    windowed["schedule"]["window"] = "busines-hours"
    windowed["stages"][0]["window"] = "weekend"
    windowed["stages"][3]["waves"][0]["window"] = "night"

    assert problems(specs, windowed) == [
        "$.schedule.window: unknown window 'busines-hours': not in $.windows "
        "(did you mean 'business-hours'?)",
        "$.stages[0].window: unknown window 'weekend': not in $.windows (windows: business-hours, nights)",
        "$.stages[3].waves[0].window: unknown window 'night': not in $.windows (did you mean 'nights'?)",
    ]


def test_a_window_needs_windows(specs, example):
    example["stages"][0]["window"] = "business-hours"

    assert problems(specs, example) == [
        "$.stages[0].window: unknown window 'business-hours': not in $.windows (none defined)"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"timezone": "America/Los_Angles"},
            "$.windows.business-hours.timezone: unknown zone 'America/Los_Angles'",
        ),
        (
            {"deny": [{"from": "2027-01-04", "to": "2026-12-21"}]},
            "$.windows.business-hours.deny[0]: from '2027-01-04' is not before to '2026-12-21'",
        ),
        (
            {"deny": [{"from": "2026-02-30", "to": "2026-03-02"}]},
            "$.windows.business-hours.deny[0].from: '2026-02-30' is not a date (2026-12-21) "
            "or local date-time (2026-12-21T09:00)",
        ),
        (
            {"allow": [{"days": ["mon"], "start": "24:00", "end": "02:00"}]},
            "$.windows.business-hours.allow[0].start: 24:00 is only allowed as an end",
        ),
        (
            {"holidays": {"country": "XX"}},
            "$.windows.business-hours.holidays: Country XX not available",
        ),
    ],
    ids=["zone", "deny order", "no such date", "24:00 start", "country"],
)
def test_a_window_that_does_not_parse_is_an_error_at_its_field(specs, windowed, change, expected):
    windowed["windows"]["business-hours"].update(change)

    assert problems(specs, windowed) == [expected]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["windows"]["business-hours"]["allow"][0].update(start="9:00"),
            "$.windows.business-hours.allow[0].start: '9:00' is not a time like 09:00 "
            "(00:00-23:59, or 24:00 as an end)",
        ),
        (
            lambda d: d["windows"]["business-hours"]["allow"][0].update(days=["mon", "fri2"]),
            "$.windows.business-hours.allow[0].days[1]: 'fri2' is not one of "
            "['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']",
        ),
        (
            lambda d: d["windows"]["business-hours"]["deny"][0].update(to="21/12/2026"),
            "$.windows.business-hours.deny[0].to: '21/12/2026' is not a date (2026-12-21) "
            "or local date-time (2026-12-21T09:00)",
        ),
        (
            lambda d: d["windows"]["nights"].update(timezon="UTC"),
            "$.windows.nights.timezon: unknown key 'timezon' (did you mean 'timezone'?)",
        ),
        (
            lambda d: d["windows"]["nights"].update(min_remaining="30 minutes"),
            "$.windows.nights.min_remaining: '30 minutes' is not a duration like 30s, 5m, 1h or 2d",
        ),
        (
            lambda d: d.update(execution={"mode": "fifo"}),
            "$.execution.mode: 'fifo' is not one of ['superseded', 'queued']",
        ),
        (
            lambda d: d.update(schedule={}),
            "$.schedule: missing required key 'window'",
        ),
    ],
    ids=["clock", "day", "bound", "window key", "min_remaining", "mode", "schedule"],
)
def test_schema_errors_name_the_path(specs, windowed, change, expected):
    change(windowed)

    assert problems(specs, windowed) == [expected]


def test_windows_can_come_from_a_template(specs, example):
    specs.write("templates/service.json", {"windows": {"business-hours": BUSINESS_HOURS}})
    example["stages"][3]["window"] = "business-hours"

    pipeline = load_pipeline(specs.write("orders-api.json", example), specs.root)

    assert [w.window.name for w in pipeline.stages[3].waves] == ["business-hours"] * 3
