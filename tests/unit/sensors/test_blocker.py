"""The blocker sensor: go at once when clear, defer while blocked, fail closed (real moto server)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from airflow.exceptions import TaskDeferred
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from handsoff.sensors.blocker import BlockerSensor
from handsoff.triggers.alarms import BlockerTrigger
from support.aws import put_alarms

BLOCKERS = {"us-east-1": ["deploy-freeze", "orders-db-degraded"]}


@pytest.fixture
def dead_port(monkeypatch) -> int:
    """A closed port on 127.0.0.1, with connection `aws_dead` pointing at it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    extra = {"region_name": "us-east-1", "endpoint_url": f"http://127.0.0.1:{port}"}
    conn = {"conn_type": "aws", "login": "test", "password": "test", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEAD", json.dumps(conn))
    return port


def test_all_clear_returns_without_deferring(aws):
    put_alarms(aws.client("cloudwatch"), BLOCKERS["us-east-1"])
    put_alarms(aws.client("cloudwatch"), ["no-data-yet"], state="INSUFFICIENT_DATA")
    alarms = {"us-east-1": [*BLOCKERS["us-east-1"], "no-data-yet"]}

    sensor = BlockerSensor(task_id="blockers", alarms=alarms, timeout_seconds=600, insufficient_data="ok")

    assert sensor.execute({}) is None


def test_blocked_defers_to_the_blocker_trigger(aws):
    put_alarms(aws.client("cloudwatch"), BLOCKERS["us-east-1"])
    aws.client("cloudwatch").set_alarm_state(AlarmName="deploy-freeze", StateValue="ALARM", StateReason="t")
    sensor = BlockerSensor(task_id="blockers", alarms=BLOCKERS, timeout_seconds=3600, poll_seconds=15)
    before = datetime.now(UTC)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, BlockerTrigger)
    kwargs = trigger.serialize()[1]
    timeout_at = datetime.fromisoformat(kwargs.pop("timeout_at"))
    assert before + timedelta(hours=1) <= timeout_at <= datetime.now(UTC) + timedelta(hours=1)
    assert kwargs == {
        "aws_conn_id": "aws_default",
        "alarms": BLOCKERS,
        "poll_seconds": 15,
        "insufficient_data": "alarm",
        "retries": 5,
        "backoff_seconds": 1.0,
        "backoff_cap": 30.0,
    }
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(hours=1, minutes=10)


def test_insufficient_data_blocks_under_the_alarm_policy(aws):
    put_alarms(aws.client("cloudwatch"), ["no-data-yet"], state="INSUFFICIENT_DATA")
    sensor = BlockerSensor(task_id="blockers", alarms={"us-east-1": ["no-data-yet"]}, timeout_seconds=60)
    with pytest.raises(TaskDeferred):
        sensor.execute({})


def test_a_missing_blocker_alarm_fails_at_once(aws):
    put_alarms(aws.client("cloudwatch"), ["deploy-freeze"])
    sensor = BlockerSensor(task_id="blockers", alarms=BLOCKERS, timeout_seconds=60)

    with pytest.raises(AirflowFailException, match=r"alarm\(s\) not found: orders-db-degraded"):
        sensor.execute({})


def test_an_unreachable_endpoint_defers_so_the_trigger_retries(aws, dead_port):
    sensor = BlockerSensor(task_id="blockers", alarms=BLOCKERS, timeout_seconds=60, aws_conn_id="aws_dead")
    with pytest.raises(TaskDeferred):
        sensor.execute({})


def test_aws_retries_leave_the_task_retries_alone():
    sensor = BlockerSensor(task_id="blockers", alarms=BLOCKERS, timeout_seconds=60, retries=2, aws_retries=7)
    assert sensor.retries == 2 and sensor.aws_retries == 7


def test_alarm_names_are_literal_never_rendered_as_jinja():
    # a name like "orders-{{ ds }}-sev2" is a name; rendered it would watch another alarm
    assert BlockerSensor.template_fields == ()


def sensor() -> BlockerSensor:
    return BlockerSensor(task_id="blockers", alarms=BLOCKERS, timeout_seconds=60)


def test_execute_complete_returns_when_clear():
    assert sensor().execute_complete({}, {"status": "clear", "polls": 4, "message": "clear"}) is None


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (
            {
                "status": "blocked",
                "alarms": ["deploy-freeze"],
                "message": "still blocked at the blocker timeout T: blocker alarm deploy-freeze is in ALARM",
            },
            AirflowException,
            "still blocked at the blocker timeout T: blocker alarm deploy-freeze is in ALARM",
        ),
        (
            {"status": "error", "alarms": ["gone"], "message": "alarm(s) not found: gone (region us-east-1)"},
            AirflowFailException,
            "alarm(s) not found: gone (region us-east-1)",
        ),
        (
            {"status": "error", "message": "could not read alarm states after 5 attempts: Throttling"},
            AirflowException,
            "could not read alarm states after 5 attempts: Throttling",
        ),
        (None, AirflowException, "unexpected event from the blocker trigger: None"),
    ],
    ids=["blocked", "missing", "retries-exhausted", "no-event"],
)
def test_execute_complete_raises_unless_clear(event, error, message):
    with pytest.raises(error) as raised:
        sensor().execute_complete({}, event)
    assert str(raised.value) == message


def test_deferred_blocker_clears_end_to_end(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, BLOCKERS["us-east-1"])
    cw.set_alarm_state(AlarmName="orders-db-degraded", StateValue="ALARM", StateReason="t")
    thaw = threading.Timer(
        0.5, lambda: cw.set_alarm_state(AlarmName="orders-db-degraded", StateValue="OK", StateReason="t")
    )
    blocker = BlockerSensor(task_id="blockers", alarms=BLOCKERS, timeout_seconds=10, poll_seconds=0.2)

    with pytest.raises(TaskDeferred) as deferred:
        blocker.execute({})
    thaw.start()

    async def collect():
        return [event async for event in deferred.value.trigger.run()]

    (event,) = asyncio.run(collect())
    thaw.join()
    assert event.payload["status"] == "clear"
    assert blocker.execute_complete({}, event.payload) is None


def test_poke_mode_waits_until_clear(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, ["deploy-freeze"], state="ALARM")
    thaw = threading.Timer(
        0.5, lambda: cw.set_alarm_state(AlarmName="deploy-freeze", StateValue="OK", StateReason="t")
    )
    blocker = BlockerSensor(
        task_id="blockers",
        alarms={"us-east-1": ["deploy-freeze"]},
        timeout_seconds=10,
        deferrable=False,
        poke_interval=0.1,
    )

    start = time.monotonic()
    thaw.start()
    blocker.execute({})
    thaw.join()
    assert 0.5 <= time.monotonic() - start < 2


def test_poke_mode_fails_past_the_timeout_naming_the_blockers(aws):
    put_alarms(aws.client("cloudwatch"), ["deploy-freeze"], state="ALARM")
    blocker = BlockerSensor(
        task_id="blockers",
        alarms={"us-east-1": ["deploy-freeze"]},
        timeout_seconds=1,
        deferrable=False,
        poke_interval=0.2,
    )

    with pytest.raises(AirflowException, match=r"still blocked .*blocker alarm deploy-freeze is in ALARM"):
        blocker.execute({})


def test_poke_mode_fails_closed_after_the_aws_retries(aws, dead_port):
    blocker = BlockerSensor(
        task_id="blockers",
        alarms=BLOCKERS,
        timeout_seconds=60,
        deferrable=False,
        poke_interval=0.05,
        aws_conn_id="aws_dead",
        aws_retries=3,
    )

    with pytest.raises(AirflowException, match="could not read blocker alarm states after 3 attempts"):
        blocker.execute({})
