"""CloudWatchAlarmHook against a real moto server over HTTP, through boto3 and aiobotocore."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from handsoff.hooks.cloudwatch import AlarmsNotFound, CloudWatchAlarmHook, backoff_delay, is_retryable
from support.aws import bulk_alarms, put_alarms


def test_250_alarms_take_3_describe_calls_per_read_sync(aws):
    names = [f"orders-api-{i:03d}" for i in range(250)]
    bulk_alarms(names)
    aws.client("cloudwatch").set_alarm_state(AlarmName="orders-api-249", StateValue="ALARM", StateReason="t")
    hook = CloudWatchAlarmHook(aws_conn_id="aws_default")

    states = hook.alarm_states(names)

    assert hook.describe_calls == 3  # ceil(250 / 100)
    assert len(states) == 250 and states["orders-api-249"] == "ALARM" and states["orders-api-000"] == "OK"
    hook.alarm_states(names)
    assert hook.describe_calls == 6  # 3 per poll; a 1 h bake at 30 s polls: 121 polls × 3 = 363 calls


def test_250_alarms_take_3_describe_calls_per_read_async(aws):
    names = [f"orders-api-{i:03d}" for i in range(250)]
    bulk_alarms(names, state="INSUFFICIENT_DATA")
    hook = CloudWatchAlarmHook(aws_conn_id="aws_default")

    states = asyncio.run(hook.alarm_states_async(names))

    assert hook.describe_calls == 3
    assert set(states.values()) == {"INSUFFICIENT_DATA"} and list(states) == names


def test_composite_alarms_are_read_too(aws):
    put_alarms(aws.client("cloudwatch"), ["child"], state="ALARM")
    bulk_alarms(["parent"], state="ALARM", rule='ALARM("child")')
    hook = CloudWatchAlarmHook()
    assert hook.alarm_states(["parent", "child"]) == {"parent": "ALARM", "child": "ALARM"}
    assert asyncio.run(hook.alarm_states_async(["parent"])) == {"parent": "ALARM"}


def test_region_is_passed_through(aws):
    put_alarms(aws.client("cloudwatch", "eu-west-1"), ["eu-only"])
    assert CloudWatchAlarmHook(region_name="eu-west-1").alarm_states(["eu-only"]) == {"eu-only": "OK"}
    with pytest.raises(AlarmsNotFound, match="eu-only"):
        CloudWatchAlarmHook(region_name="us-east-1").alarm_states(["eu-only"])


def test_a_missing_alarm_is_an_error_naming_it(aws):
    put_alarms(aws.client("cloudwatch"), ["present"])
    hook = CloudWatchAlarmHook()

    with pytest.raises(AlarmsNotFound) as sync_err:
        hook.alarm_states(["present", "typo-alarm", "gone"])
    with pytest.raises(AlarmsNotFound) as async_err:
        asyncio.run(hook.alarm_states_async(["typo-alarm", "present"]))

    assert isinstance(sync_err.value, ValueError)
    assert sync_err.value.names == ["gone", "typo-alarm"]
    assert str(sync_err.value) == "alarm(s) not found: gone, typo-alarm (region us-east-1)"
    assert async_err.value.names == ["typo-alarm"]


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeAlarms"
    )


@pytest.mark.parametrize(
    ("err", "retryable"),
    [
        (_client_error("Throttling", 400), True),
        (_client_error("InternalFailure", 500), True),
        (_client_error("Whatever", 503), True),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (_client_error("AccessDenied", 403), False),
        (_client_error("InvalidParameterValue", 400), False),
        (ValueError("bug"), False),
    ],
)
def test_which_errors_are_retried(err, retryable):
    assert is_retryable(err) is retryable


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_delay(n, 1.0, 30.0) for n in range(1, 7)] == [1, 2, 4, 8, 16, 30]


def test_sdk_retries_are_off_so_attempts_are_counted_once():
    assert CloudWatchAlarmHook().config.retries == {"total_max_attempts": 1}


def test_metric_sum_adds_the_datapoints_since_a_moment(aws):
    since = datetime.now(UTC) - timedelta(minutes=2)
    dims = [{"Name": "FunctionName", "Value": "orders"}]
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": "Invocations", "Dimensions": dims, "Value": v} for v in (40, 30, 2)],
    )
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "FunctionName", "Value": "other"}],
                "Value": 9,
            }
        ],
    )
    hook = CloudWatchAlarmHook()
    until = datetime.now(UTC) + timedelta(seconds=1)
    args = ("AWS/Lambda", "Invocations", {"FunctionName": "orders"}, since, until)

    assert hook.metric_sum(*args) == 72
    assert asyncio.run(hook.metric_sum_async(*args)) == 72
    assert hook.metric_calls == 2
    assert hook.metric_sum("AWS/Lambda", "Invocations", {"FunctionName": "none"}, since, until) == 0


def test_metric_sum_counts_whole_minutes_from_since_rounded_up(aws):
    """CloudWatch rounds StartTime down to the minute; the hook rounds up, so older data never counts."""
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda", MetricData=[{"MetricName": "Invocations", "Value": 500}]
    )
    since = datetime.now(UTC)  # after the datapoint, in the same minute

    assert CloudWatchAlarmHook().metric_sum("AWS/Lambda", "Invocations", {}, since, since) == 0
