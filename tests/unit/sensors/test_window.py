"""The window gate: passes while the window lets a wave start, else defers until it does, or gives way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.exceptions import TaskDeferred
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from handsoff.model.windows import DeploymentWindow
from handsoff.sensors.window import DeploymentWindowSensor, next_start
from support.context import TaskInstanceStandIn, task_context


def minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def closed_until(opens: datetime, **extra: Any) -> dict:
    """A UTC window closed from a day before `opens` until `opens` (whole minutes), open afterwards."""
    deny = {"from": minute(opens - timedelta(days=1)), "to": minute(opens), "reason": "freeze"}
    return {"timezone": "UTC", "deny": [deny], **extra}


@dataclass
class FakeRun:
    conf: dict
    dag_id: str = "app"
    run_id: str = "manual__1"
    run_after: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=1))


def waiting(queued: int = 0, states: dict | None = None) -> TaskInstanceStandIn:
    """The gate's task instance: `queued` runs queued, `states` their task states by run id."""
    return TaskInstanceStandIn(task_id="window", run_counts={"queued": queued}, task_states=states or {})


def context(conf: dict | None = None, ti: TaskInstanceStandIn | None = None) -> dict:
    return task_context(ti or waiting(), conf=conf, run_after=datetime.now(UTC) - timedelta(hours=1))


def gate(window: dict, mode: str = "queued") -> DeploymentWindowSensor:
    return DeploymentWindowSensor(
        task_id="window", window=window, window_name="w", first_task="source", execution_mode=mode
    )


def deferred(sensor: DeploymentWindowSensor, ctx: dict, resume: bool = False) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as raised:
        sensor.execute_complete(ctx, event=None) if resume else sensor.execute(ctx)
    assert isinstance(raised.value.trigger, DateTimeTrigger)
    assert raised.value.method_name == "execute_complete"
    return raised.value


def test_an_open_window_lets_the_wave_start():
    assert gate({"timezone": "UTC"}).execute(context()) is None


def test_a_closed_window_defers_until_it_opens():
    opens = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)

    wait = deferred(gate(closed_until(opens)), context())

    assert wait.trigger.moment == opens
    assert abs(wait.timeout - (opens - datetime.now(UTC) + timedelta(minutes=10))) < timedelta(seconds=5)
    classpath, kwargs = wait.trigger.serialize()
    assert classpath.endswith("DateTimeTrigger") and kwargs["moment"] == opens


def test_resuming_checks_again_and_waits_again_while_closed():
    opens = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    sensor = gate(closed_until(opens))

    assert deferred(sensor, context(), resume=True).trigger.moment == opens
    assert gate({"timezone": "UTC"}).execute_complete(context(), event=None) is None


def test_too_little_time_left_waits_for_an_opening_long_enough():
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    closes = (now + timedelta(minutes=10)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    window = {
        "timezone": "UTC",
        "deny": [{"from": minute(closes), "to": minute(today + timedelta(days=2)), "reason": "freeze"}],
        "min_remaining": "30m",
    }
    assert DeploymentWindow.from_spec(window).is_open(now)

    wait = deferred(gate(window), context())

    assert wait.trigger.moment == today + timedelta(days=2)


def test_superseded_mode_looks_again_for_newer_runs_every_ten_minutes():
    opens = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)

    wait = deferred(gate(closed_until(opens), mode="superseded"), context())

    assert timedelta(minutes=9) < wait.trigger.moment - datetime.now(UTC) <= timedelta(minutes=10)


def test_a_newer_queued_run_supersedes_a_waiting_one(monkeypatch):
    newer = FakeRun({"commit": "c0ffee" * 6}, run_id="merge-c0ffee", run_after=datetime.now(UTC))
    newer.state = "queued"
    monkeypatch.setattr("handsoff.utils.superseding.dag_run_details", lambda dag_id, run_id: newer)
    ti = waiting(queued=1, states={"manual__1": {"source": "success"}, "merge-c0ffee": {"source": None}})
    opens = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)

    with pytest.raises(AirflowSkipException) as skipped:
        gate(closed_until(opens), mode="superseded").execute(context(ti=ti))

    message = "superseded by merge-c0ffee (commit c0ffeec0ffee), a newer run waiting to deploy"
    assert str(skipped.value).startswith(
        message + "; this run stops at window (window w closed (freeze) until"
    )
    assert ti.pushed["superseded_by"] == {"run_id": "merge-c0ffee", "message": str(skipped.value)}
    # queued mode waits in line instead
    assert deferred(gate(closed_until(opens), mode="queued"), context(ti=ti)).trigger.moment == opens


def test_a_run_that_waited_gives_way_when_it_wakes_but_one_that_finds_the_window_open_goes_on(monkeypatch):
    newer = FakeRun({}, run_id="scheduled__opening", run_after=datetime.now(UTC))
    newer.state = "queued"
    monkeypatch.setattr("handsoff.utils.superseding.dag_run_details", lambda dag_id, run_id: newer)
    ti = waiting(queued=1, states={"scheduled__opening": {"source": None}})
    open_gate = gate({"timezone": "UTC"}, mode="superseded")

    assert open_gate.execute(context(ti=ti)) is None  # arrived at an open window: no waiting, no giving way
    with pytest.raises(AirflowSkipException, match=r"^superseded by scheduled__opening \(the branch head\)"):
        open_gate.execute_complete(context(ti=ti), event=None)  # woke up: the newer run goes first


def test_an_override_passes_at_once_and_is_recorded():
    opens = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)
    ti = waiting()

    assert gate(closed_until(opens)).execute(context({"override_window": " INC-7 hotfix "}, ti)) is None

    record = ti.pushed["window_override"]
    assert (record["window"], record["reason"]) == ("w", "INC-7 hotfix")
    assert record["state"] == f"closed (freeze) until {opens:%Y-%m-%d %H:%M} UTC"
    with pytest.raises(TaskDeferred):  # a blank reason is no override
        gate(closed_until(opens)).execute(context({"override_window": "  "}))


def test_a_window_that_never_opens_fails_the_gate():
    never = {
        "timezone": "UTC",
        "allow": [{"days": ["mon"], "start": "02:00", "end": "03:00"}],
        "min_remaining": "2h",
    }

    with pytest.raises(AirflowFailException, match="the wave can never start"):
        gate(never).execute(context())


def test_next_start_skips_openings_shorter_than_min_remaining():
    window = DeploymentWindow.from_spec(
        {
            "timezone": "UTC",
            "allow": [
                {"days": ["mon"], "start": "09:00", "end": "09:20"},
                {"days": ["tue"], "start": "09:00", "end": "17:00"},
            ],
            "min_remaining": "30m",
        }
    )
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    assert next_start(window, monday) == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    tuesday = datetime(2026, 11, 24, 16, 45, tzinfo=UTC)  # 15 minutes left: next Tuesday (Monday's is short)
    assert next_start(window, tuesday) == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
