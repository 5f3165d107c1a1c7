"""The bake sensor defers to the triggerer for its duration, watching rollback alarms and datapoints."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from airflow.exceptions import TaskDeferred
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from handsoff.sensors.bake import BakeSensor
from handsoff.triggers.alarms import AlarmWatchTrigger
from support.aws import put_alarms


def test_defers_until_the_bake_ends():
    sensor = BakeSensor(task_id="bake", bake_seconds=3600)
    before = datetime.now(UTC)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert before + timedelta(hours=1) <= trigger.moment <= datetime.now(UTC) + timedelta(hours=1)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("DateTimeTrigger") and kwargs["moment"] == trigger.moment


def test_zero_bake_does_not_defer():
    assert BakeSensor(task_id="bake", bake_seconds=0).execute({}) is None


def test_poke_mode_waits_in_the_worker():
    sensor = BakeSensor(task_id="bake", bake_seconds=1, deferrable=False, poke_interval=0.2)
    start = datetime.now(UTC)
    sensor.execute({})
    assert datetime.now(UTC) - start >= timedelta(seconds=1)


def test_a_bake_shorter_than_defer_min_seconds_waits_in_the_worker():
    """Deferring a 2 s bake would cost more than it saves (and races in Airflow 3.3): no TaskDeferred."""
    assert BakeSensor.defer_min_seconds == 10
    sensor = BakeSensor(task_id="bake", bake_seconds=2, poke_interval=0.2)
    start = datetime.now(UTC)
    sensor.execute({})  # would raise TaskDeferred if it deferred
    assert datetime.now(UTC) - start >= timedelta(seconds=2)
    with pytest.raises(TaskDeferred):
        BakeSensor(task_id="bake", bake_seconds=10).execute({})


# --- watching rollback alarms and waiting for datapoints ---------------------------------------------


ALARMS = {
    "us-east-1": ["orders-api-us-east-1-high-severity"],
    "eu-west-1": ["orders-api-eu-west-1-high-severity"],
}
INVOCATIONS = {"namespace": "AWS/Lambda", "metric": "Invocations", "dimensions": {"FunctionName": "orders"}}


def deferred_trigger(sensor) -> tuple[AlarmWatchTrigger, dict, TaskDeferred]:
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, AlarmWatchTrigger)
    return trigger, trigger.serialize()[1], deferred.value


def test_watching_alarms_defers_to_the_alarm_watch_trigger():
    sensor = BakeSensor(
        task_id="bake",
        bake_seconds=3600,
        alarms=ALARMS,
        poll_seconds=10,
        insufficient_data="ok",
        aws_retries=3,
        backoff_seconds=0.5,
    )
    before = datetime.now(UTC)

    trigger, kwargs, deferred = deferred_trigger(sensor)

    until = datetime.fromisoformat(kwargs.pop("until"))
    assert before + timedelta(hours=1) <= until <= datetime.now(UTC) + timedelta(hours=1)
    assert kwargs == {
        "aws_conn_id": "aws_default",
        "alarms": ALARMS,
        "poll_seconds": 10,
        "insufficient_data": "ok",
        "datapoints": None,
        "max_until": None,
        "retries": 3,
        "backoff_seconds": 0.5,
        "backoff_cap": 30.0,
    }
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(hours=1, minutes=10)


def test_datapoints_wait_from_the_bake_start_to_the_max():
    sensor = BakeSensor(
        task_id="bake",
        bake_seconds=600,
        alarms=ALARMS,
        datapoints={**INVOCATIONS, "count": 100},
        max_seconds=10800,
    )
    before = datetime.now(UTC)

    _, kwargs, deferred = deferred_trigger(sensor)

    since = datetime.fromisoformat(kwargs["datapoints"].pop("since"))
    assert before <= since <= datetime.now(UTC)
    assert kwargs["datapoints"] == {**INVOCATIONS, "count": 100}
    assert datetime.fromisoformat(kwargs["max_until"]) == since + timedelta(hours=3)
    assert datetime.fromisoformat(kwargs["until"]) == since + timedelta(minutes=10)
    assert deferred.timeout == timedelta(hours=3, minutes=10)


def test_datapoints_without_a_max_must_arrive_within_the_bake():
    sensor = BakeSensor(task_id="bake", bake_seconds=600, datapoints={**INVOCATIONS, "count": 1})
    _, kwargs, _ = deferred_trigger(sensor)
    assert kwargs["alarms"] == {} and kwargs["max_until"] == kwargs["until"]


def test_an_empty_alarm_list_is_a_plain_timer():
    with pytest.raises(TaskDeferred) as deferred:
        BakeSensor(task_id="bake", bake_seconds=60, alarms={"us-east-1": []}).execute({})
    assert isinstance(deferred.value.trigger, DateTimeTrigger)


def test_only_the_runs_commit_is_a_template_field_spec_values_are_never_rendered():
    assert BakeSensor.template_fields == ("commit",)  # alarm names and metrics come from the spec: literal


def test_aws_retries_leave_the_task_retries_alone():
    sensor = BakeSensor(task_id="bake", bake_seconds=60, alarms=ALARMS, retries=2)
    assert sensor.retries == 2 and sensor.aws_retries == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_seconds": 30}, "shorter than bake_seconds"),
        ({"insufficient_data": "missing"}, "insufficient_data"),
        ({"datapoints": {"namespace": "AWS/Lambda", "metric": "Invocations"}}, "missing count"),
        ({"datapoints": {**INVOCATIONS, "count": 5, "period": 60}}, "unknown key period"),
        ({"alarms": ["orders-high"]}, "map a region"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BakeSensor(task_id="bake", bake_seconds=60, **kwargs)


def watching_sensor(**kwargs) -> BakeSensor:
    return BakeSensor(task_id="bake", bake_seconds=3600, alarms=ALARMS, **kwargs)


def test_execute_complete_returns_on_success():
    assert watching_sensor().execute_complete({}, {"status": "success", "polls": 3, "message": "ok"}) is None


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (
            {
                "status": "alarm",
                "alarms": ["orders-api-us-east-1-high-severity"],
                "message": "rollback alarm orders-api-us-east-1-high-severity is in ALARM (us-east-1)",
            },
            AirflowFailException,
            "rollback alarm orders-api-us-east-1-high-severity is in ALARM (us-east-1)",
        ),
        (
            {
                "status": "error",
                "alarms": ["x", "y"],
                "message": "alarm(s) not found: x, y (region us-east-1)",
            },
            AirflowFailException,
            "alarm(s) not found: x, y (region us-east-1)",
        ),
        (
            {"status": "error", "message": "could not read alarm states after 5 attempts: Could not connect"},
            AirflowException,
            "could not read alarm states after 5 attempts: Could not connect",
        ),
        (
            {"status": "surprise"},
            AirflowException,
            "unexpected event from the bake trigger: {'status': 'surprise'}",
        ),
        (None, AirflowException, "unexpected event from the bake trigger: None"),
    ],
    ids=["alarm", "missing", "retries-exhausted", "unknown-status", "no-event"],
)
def test_execute_complete_raises_unless_success(event, error, message):
    with pytest.raises(error) as raised:
        watching_sensor().execute_complete({}, event)
    assert str(raised.value) == message
    if error is AirflowException:
        assert not isinstance(raised.value, AirflowFailException)  # a task retry runs a whole new bake


def test_no_evidence_names_the_metric_the_count_seen_and_the_max_bake():
    sensor = watching_sensor(
        datapoints={"namespace": "AWS/Lambda", "metric": "Invocations", "count": 100}, max_seconds=10800
    )
    event = {
        "status": "no_evidence",
        "metric": "AWS/Lambda Invocations",
        "seen": 12.0,
        "count": 100,
        "message": "…",
    }

    with pytest.raises(AirflowFailException) as raised:
        sensor.execute_complete({}, event)

    assert str(raised.value) == "no evidence: AWS/Lambda Invocations sum 12 < 100 by the max bake 3h"


def run_trigger(trigger) -> dict:
    async def collect():
        return [event async for event in trigger.run()]

    (event,) = asyncio.run(collect())
    return event.payload


def test_deferred_bake_fails_on_a_rollback_alarm_end_to_end(aws):
    put_alarms(aws.client("cloudwatch"), ALARMS["us-east-1"], state="ALARM")
    put_alarms(aws.client("cloudwatch", "eu-west-1"), ALARMS["eu-west-1"])
    sensor = watching_sensor(poll_seconds=0.2)

    trigger, _, _ = deferred_trigger(sensor)
    event = run_trigger(trigger)

    with pytest.raises(
        AirflowFailException, match=r"rollback alarm orders-api-us-east-1-high-severity is in ALARM"
    ):
        sensor.execute_complete({}, event)


def test_deferred_bake_passes_with_evidence_end_to_end(aws):
    put_alarms(aws.client("cloudwatch"), ALARMS["us-east-1"])
    put_alarms(aws.client("cloudwatch", "eu-west-1"), ALARMS["eu-west-1"])
    feed = threading.Timer(
        0.3,
        lambda: aws.client("cloudwatch").put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [{"Name": "FunctionName", "Value": "orders"}],
                    "Value": 5,
                }
            ],
        ),
    )
    sensor = BakeSensor(
        task_id="bake",
        bake_seconds=0,
        alarms=ALARMS,
        poll_seconds=0.2,
        datapoints={**INVOCATIONS, "count": 5},
        max_seconds=3,
    )
    sensor.defer_min_seconds = 0  # a 3 s bake would wait in the worker; this test is about the trigger

    trigger, _, _ = deferred_trigger(sensor)
    trigger.datapoints["since"] = (
        datetime.now(UTC) - timedelta(minutes=2)
    ).isoformat()  # whole minutes count
    feed.start()
    event = run_trigger(trigger)
    feed.join()

    assert event["status"] == "success" and event["datapoints_seen"] == 5
    assert sensor.execute_complete({}, event) is None


def test_poke_mode_fails_as_soon_as_an_alarm_fires(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, ["orders-high"])
    flip = threading.Timer(
        0.3, lambda: cw.set_alarm_state(AlarmName="orders-high", StateValue="ALARM", StateReason="t")
    )
    sensor = BakeSensor(
        task_id="bake",
        bake_seconds=30,
        alarms={"us-east-1": ["orders-high"]},
        deferrable=False,
        poke_interval=0.1,
    )

    start = time.monotonic()
    flip.start()
    with pytest.raises(AirflowFailException, match="rollback alarm orders-high is in ALARM"):
        sensor.execute({})
    flip.join()
    assert time.monotonic() - start < 2


def test_poke_mode_passes_when_alarms_stay_ok(aws):
    put_alarms(aws.client("cloudwatch"), ["orders-high"])
    sensor = BakeSensor(
        task_id="bake",
        bake_seconds=1,
        alarms={"us-east-1": ["orders-high"]},
        deferrable=False,
        poke_interval=0.2,
    )
    start = time.monotonic()
    sensor.execute({})
    assert time.monotonic() - start >= 1
