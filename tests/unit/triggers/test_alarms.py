"""The alarm triggers, run with asyncio against a real moto server (aiobotocore over HTTP).

Windows are 1–3 s with sub-second polls; alarms are flipped from background threads (moto does not
evaluate alarms from metric data).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from handsoff.triggers.alarms import AlarmWatchTrigger, BlockerTrigger, CloudWatchAlarmTrigger
from support.aws import bulk_alarms, put_alarms

FAST = {"retries": 3, "backoff_seconds": 0.05, "backoff_cap": 0.1}


def import_string(classpath: str):
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)


def iso(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def run(trigger) -> tuple[dict, float, int]:
    """Run the trigger to its end: (its only event's payload, seconds taken, number of events)."""

    async def collect():
        return [event async for event in trigger.run()]

    start = time.monotonic()
    events = asyncio.run(collect())
    assert len(events) == 1, events
    return events[0].payload, time.monotonic() - start, len(events)


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def watch(alarms, until, **kwargs) -> AlarmWatchTrigger:
    args = {"aws_conn_id": "aws_default", "poll_seconds": 0.2, "insufficient_data": "alarm", **FAST, **kwargs}
    return AlarmWatchTrigger(alarms=alarms, until=until, **args)


def blocker(alarms, timeout_at, **kwargs) -> BlockerTrigger:
    args = {"aws_conn_id": "aws_default", "poll_seconds": 0.2, "insufficient_data": "alarm", **FAST, **kwargs}
    return BlockerTrigger(alarms=alarms, timeout_at=timeout_at, **args)


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


# --- serialization ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trigger",
    [
        watch({"us-east-1": ["a", "b"], "eu-west-1": ["c"]}, iso(60)),
        watch(
            {"us-east-1": ["a"]},
            iso(60),
            insufficient_data="ok",
            datapoints={
                "namespace": "AWS/Lambda",
                "metric": "Invocations",
                "dimensions": {"FunctionName": "orders"},
                "count": 100,
                "since": iso(0),
            },
            max_until=iso(3600),
        ),
        blocker({"us-east-1": ["deploy-freeze"]}, iso(60)),
    ],
    ids=["watch", "watch-datapoints", "blocker"],
)
def test_triggers_round_trip_through_serialize(trigger):
    classpath, kwargs = trigger.serialize()

    cls = import_string(classpath)
    assert cls is type(trigger)
    assert set(kwargs) == set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON-simple
    assert cls(**kwargs).serialize() == (classpath, kwargs)


def test_a_subclass_with_positional_arguments_is_rejected_at_import():
    with pytest.raises(TypeError, match="keyword-only"):

        class Loose(CloudWatchAlarmTrigger):  # noqa: F841
            def __init__(self, aws_conn_id, alarms):
                pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"until": "2026-01-01T00:00:00"}, "time zone"),
        ({"until": "tomorrow"}, "ISO 8601"),
        ({"insufficient_data": "ignore"}, "insufficient_data"),
        ({"alarms": {"us-east-1": "one-name"}}, "list of alarm names"),
        ({"datapoints": {"namespace": "AWS/Lambda", "count": 0, "since": iso(0)}}, "missing metric"),
        ({"max_until": iso(-10)}, "before until"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    args = {"alarms": {"us-east-1": ["a"]}, "until": iso(10), **kwargs}
    with pytest.raises(ValueError, match=message):
        watch(**args)


# --- AlarmWatchTrigger -----------------------------------------------------------------------------


def test_success_when_every_alarm_stays_ok_until_the_end(aws):
    put_alarms(aws.client("cloudwatch"), ["orders-high-severity"])
    put_alarms(aws.client("cloudwatch", "eu-west-1"), ["orders-eu-high-severity"])

    event, took, _ = run(
        watch(
            {"us-east-1": ["orders-high-severity"], "": [], "eu-west-1": ["orders-eu-high-severity"]}, iso(1)
        )
    )

    assert event["status"] == "success"
    assert took >= 0.9  # never before the bake's end (how much later depends on the machine's load)
    assert event["polls"] >= 2 and event["describe_calls"] == 2 * event["polls"]  # one call per region
    assert event["alarms_watched"] == 2 and event["datapoints_seen"] is None


def test_calls_per_poll_scale_with_batches_of_100(aws):
    """250 alarms → 3 DescribeAlarms calls per poll; polls at the start, every poll_seconds, and at the end.

    Scaled up: a 1-hour bake at the default 30 s poll makes 3600/30 + 1 = 121 polls × 3 = 363 calls.
    Here: 1.5 s at 0.5 s → 4 polls × 3 = 12 calls.
    """
    names = [f"orders-api-{i:03d}" for i in range(250)]
    bulk_alarms(names)

    event, _, _ = run(watch({"us-east-1": names}, iso(1.5), poll_seconds=0.5))

    assert event["status"] == "success" and event["alarms_watched"] == 250
    assert event["polls"] == 4 and event["describe_calls"] == 12


def test_an_alarm_fails_the_bake_at_once(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, ["orders-api-us-east-1-high-severity", "orders-api-latency"])
    flip = later(
        0.5, lambda: cw.set_alarm_state(AlarmName="orders-api-latency", StateValue="ALARM", StateReason="t")
    )

    event, took, _ = run(
        watch({"us-east-1": ["orders-api-us-east-1-high-severity", "orders-api-latency"]}, iso(10))
    )
    flip.join()

    assert event["status"] == "alarm" and event["alarms"] == ["orders-api-latency"]
    assert event["message"] == "rollback alarm orders-api-latency is in ALARM (us-east-1)"
    assert 0.5 <= took < 8  # well before the 10 s `until`


@pytest.mark.parametrize(("policy", "status"), [("alarm", "alarm"), ("ok", "success")])
def test_insufficient_data_follows_the_policy(aws, policy, status):
    put_alarms(aws.client("cloudwatch"), ["new-alarm"], state="INSUFFICIENT_DATA")

    until = iso(10) if status == "alarm" else iso(0.5)
    event, took, _ = run(watch({"us-east-1": ["new-alarm"]}, until, insufficient_data=policy))

    assert event["status"] == status
    if status == "alarm":
        assert (
            event["message"]
            == "rollback alarm new-alarm is in INSUFFICIENT_DATA, treated as ALARM (us-east-1)"
        )
        assert took < 8  # the first poll, not the 10 s `until`


def test_a_missing_alarm_is_an_error_naming_it(aws):
    put_alarms(aws.client("cloudwatch"), ["present"])
    put_alarms(aws.client("cloudwatch", "eu-west-1"), ["present"])

    event, _, _ = run(watch({"us-east-1": ["present", "typo"], "eu-west-1": ["present", "gone"]}, iso(0)))

    assert event == {
        "status": "error",
        "alarms": ["gone", "typo"],
        "message": "alarm(s) not found: gone, typo (region us-east-1, eu-west-1)",
    }


def test_an_unreachable_endpoint_is_retried_then_fails_never_passes(aws, dead_port):
    put_alarms(aws.client("cloudwatch"), ["a"])

    event, took, _ = run(watch({"us-east-1": ["a"]}, iso(0), aws_conn_id="aws_dead", retries=4))

    assert event["status"] == "error"
    assert event["message"].startswith("could not read alarm states after 4 attempts: Could not connect")
    assert took >= 0.05 + 0.1 + 0.1  # backoff 0.05, 0.1, then the 0.1 cap


def test_an_endpoint_that_comes_back_within_the_retries_passes(aws, dead_port):
    from moto.server import ThreadedMotoServer

    put_alarms(aws.client("cloudwatch"), ["a"])
    revived = ThreadedMotoServer(ip_address="127.0.0.1", port=dead_port, verbose=False)
    later(0.3, revived.start)
    try:
        trigger = watch({"us-east-1": ["a"]}, iso(0), aws_conn_id="aws_dead", retries=6, backoff_seconds=0.1)
        trigger.backoff_cap = 1.0
        event, _, _ = run(trigger)
    finally:
        time.sleep(0.1)
        revived.stop()

    assert event["status"] == "success"
    assert event["describe_calls"] >= 2  # failed attempts count too


def test_a_rerun_after_a_triggerer_restart_keeps_the_absolute_deadline(aws):
    put_alarms(aws.client("cloudwatch"), ["a"])
    first = watch({"us-east-1": ["a"]}, iso(1))
    run(first)

    classpath, kwargs = first.serialize()
    event, took, _ = run(import_string(classpath)(**kwargs))

    assert event["status"] == "success" and event["polls"] == 1  # the deadline had passed: one last poll


DATAPOINTS = {"namespace": "AWS/Lambda", "metric": "Invocations", "dimensions": {"FunctionName": "orders"}}


def put_invocations(cw, value: float) -> None:
    cw.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "FunctionName", "Value": "orders"}],
                "Value": value,
            }
        ],
    )


def test_enough_datapoints_complete_the_bake(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, ["a"])
    since = iso(-120)  # sums count whole minutes from `since`, rounded up
    put_invocations(cw, 60)
    put_invocations(cw, 45)

    event, took, _ = run(
        watch({"us-east-1": ["a"]}, iso(0.5), datapoints={**DATAPOINTS, "count": 100, "since": since})
    )

    assert event["status"] == "success" and event["datapoints_seen"] == 105 and event["metric_calls"] == 1


def test_too_few_datapoints_by_the_max_is_no_evidence(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, ["a"])
    since = iso(-120)  # sums count whole minutes from `since`, rounded up
    put_invocations(cw, 12)

    event, took, _ = run(
        watch(
            {"us-east-1": ["a"]},
            iso(0.3),
            datapoints={**DATAPOINTS, "count": 100, "since": since},
            max_until=iso(1.2),
        )
    )

    assert event["status"] == "no_evidence" and event["seen"] == 12 and event["count"] == 100
    assert event["message"].startswith("no evidence: AWS/Lambda Invocations sum 12 < 100 by ")
    assert event["message"].endswith("(FunctionName=orders)")
    assert took >= 1.1  # not before the max


def test_the_bake_waits_past_its_duration_for_datapoints(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, ["a"])
    since = iso(-120)  # sums count whole minutes from `since`, rounded up
    feed = later(0.8, lambda: put_invocations(cw, 100))

    trigger = watch(
        {"us-east-1": ["a"]},
        iso(0.2),
        datapoints={**DATAPOINTS, "count": 100, "since": since},
        max_until=iso(5),
    )
    event, took, _ = run(trigger)
    feed.join()

    assert event["status"] == "success" and event["datapoints_seen"] == 100
    assert took >= 0.8 and event["metric_calls"] >= 2  # success, so before the 5 s max


def test_alarms_are_still_watched_while_waiting_for_datapoints(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, ["a"])
    flip = later(0.6, lambda: cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="t"))

    trigger = watch(
        {"us-east-1": ["a"]},
        iso(0.1),
        datapoints={**DATAPOINTS, "count": 1, "since": iso(0)},
        max_until=iso(5),
    )
    event, took, _ = run(trigger)
    flip.join()

    assert event["status"] == "alarm" and took < 4.5  # not the 5 s max's no_evidence


# --- BlockerTrigger --------------------------------------------------------------------------------


def test_blocker_clear_at_once(aws):
    put_alarms(aws.client("cloudwatch"), ["freeze"], state="INSUFFICIENT_DATA")

    event, took, _ = run(blocker({"us-east-1": ["freeze"]}, iso(5), insufficient_data="ok"))

    assert event["status"] == "clear" and event["polls"] == 1


def test_blocker_waits_until_the_alarm_clears(aws):
    cw = aws.client("cloudwatch")
    put_alarms(cw, ["freeze", "ok-one"])
    cw.set_alarm_state(AlarmName="freeze", StateValue="ALARM", StateReason="t")
    thaw = later(1.0, lambda: cw.set_alarm_state(AlarmName="freeze", StateValue="OK", StateReason="t"))

    event, took, _ = run(blocker({"us-east-1": ["freeze", "ok-one"]}, iso(10)))
    thaw.join()

    assert event["status"] == "clear" and event["polls"] >= 3  # clear, so before the 10 s timeout
    assert took >= 1.0


def test_blocked_past_the_timeout_names_the_blockers(aws):
    put_alarms(aws.client("cloudwatch"), ["freeze"], state="ALARM")
    put_alarms(aws.client("cloudwatch"), ["no-data"], state="INSUFFICIENT_DATA")

    event, took, _ = run(blocker({"us-east-1": ["freeze", "no-data"]}, iso(1)))

    assert event["status"] == "blocked" and event["alarms"] == ["freeze", "no-data"]
    assert "blocker alarm freeze is in ALARM (us-east-1)" in event["message"]
    assert "blocker alarm no-data is in INSUFFICIENT_DATA, treated as ALARM" in event["message"]
    assert took >= 1.0  # not before the timeout


def test_blocker_fails_closed(aws, dead_port):
    event, _, _ = run(blocker({"us-east-1": ["missing"]}, iso(5)))
    assert event["status"] == "error" and event["alarms"] == ["missing"]

    event, _, _ = run(blocker({"us-east-1": ["x"]}, iso(5), aws_conn_id="aws_dead"))
    assert event["status"] == "error" and "after 3 attempts" in event["message"]
