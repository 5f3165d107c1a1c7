"""CloudWatch alarm states and metric sums for bakes and blockers (boto3 and aiobotocore).

Cost: one DescribeAlarms call per 100 alarm names per poll. A 1-hour bake watching 250 alarms at the
default 30 s poll makes 121 polls (one at the start, one every 30 s, the last at the deadline) × 3 calls
= 363 DescribeAlarms calls, about 360 an hour.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

BATCH = 100  # DescribeAlarms accepts at most 100 alarm names
_ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]  # AWS describes only metric alarms unless asked
# Callers retry with their own bounded backoff, so botocore must not retry underneath (5 × 5 attempts).
_NO_SDK_RETRIES = Config(retries={"total_max_attempts": 1})
_RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
    }
)


class AlarmsNotFound(ValueError):
    """Alarm names that CloudWatch does not know: an error, never "no alarm, so fine"."""

    def __init__(self, names: Sequence[str], region: str | None = None) -> None:
        self.names = sorted(names)
        self.region = region
        where = f" (region {region})" if region else ""
        super().__init__(f"alarm(s) not found: {', '.join(self.names)}{where}")


def is_retryable(err: BaseException) -> bool:
    """True for errors that may pass: throttling, 5xx, timeouts, connection refused or dropped."""
    if isinstance(err, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return err.response.get("Error", {}).get("Code") in _RETRYABLE_CODES or status >= 500 or status == 429
    return False


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base·2^(attempt-1), at most cap."""
    return min(cap, base * 2 ** (attempt - 1))


def _batches(names: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(names))
    for start in range(0, len(unique), BATCH):
        yield unique[start : start + BATCH]


def _states(names: Sequence[str], pages: list[dict[str, Any]], region: str | None) -> dict[str, str]:
    found = {
        alarm["AlarmName"]: alarm["StateValue"]
        for page in pages
        for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
    }
    missing = [name for name in names if name not in found]
    if missing:
        raise AlarmsNotFound(missing, region)
    return {name: found[name] for name in names}


def _whole_minute(moment: datetime) -> datetime:
    """`moment` rounded up to a whole minute."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _stats_request(
    namespace: str, metric: str, dimensions: Mapping[str, str], since: datetime, until: datetime
) -> dict[str, Any]:
    """GetMetricStatistics arguments: one period over the whole minutes from `since` to `until`.

    Both ends are rounded up to a whole minute: CloudWatch would round StartTime down, counting data from
    before `since` (evidence must come from the bake itself); the current minute counts in full.
    """
    start = _whole_minute(since)
    end = max(_whole_minute(until), start + timedelta(minutes=1))
    return {
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": str(v)} for k, v in sorted(dimensions.items())],
        "StartTime": start,
        "EndTime": end,
        "Period": int((end - start).total_seconds()),
        "Statistics": ["Sum"],
    }


class CloudWatchAlarmHook(AwsBaseHook):
    """Read CloudWatch alarm states and metric sums; counts its API calls.

    Pass `region_name` to read another region than the connection's. botocore's own retries are off:
    the callers (triggers, sensors) retry with a bounded exponential backoff.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "cloudwatch"
        super().__init__(*args, **kwargs)
        self.describe_calls = 0
        self.metric_calls = 0

    @property
    def config(self) -> Config:
        """The connection's botocore config, with SDK retries off."""
        return super().config.merge(_NO_SDK_RETRIES)

    def alarm_states(self, names: Sequence[str]) -> dict[str, str]:
        """Alarm name → StateValue, one DescribeAlarms call per 100 names; AlarmsNotFound if any is absent."""
        pages = []
        for batch in _batches(names):
            self.describe_calls += 1
            pages.append(
                self.conn.describe_alarms(AlarmNames=batch, AlarmTypes=_ALARM_TYPES, MaxRecords=BATCH)
            )
        return _states(names, pages, self.region_name)

    async def alarm_states_async(self, names: Sequence[str], client: Any = None) -> dict[str, str]:
        """`alarm_states` through aiobotocore (triggers); pass an open `client` to reuse it across polls."""
        if client is None:
            async with await self.get_async_conn() as client:
                return await self.alarm_states_async(names, client)
        pages = []
        for batch in _batches(names):
            self.describe_calls += 1
            pages.append(
                await client.describe_alarms(AlarmNames=batch, AlarmTypes=_ALARM_TYPES, MaxRecords=BATCH)
            )
        return _states(names, pages, self.region_name)

    def metric_sum(
        self, namespace: str, metric: str, dimensions: Mapping[str, str], since: datetime, until: datetime
    ) -> float:
        """Sum of the metric over the whole minutes from `since` to `until` (one GetMetricStatistics)."""
        self.metric_calls += 1
        response = self.conn.get_metric_statistics(
            **_stats_request(namespace, metric, dimensions, since, until)
        )
        return sum(point["Sum"] for point in response["Datapoints"])

    async def metric_sum_async(
        self,
        namespace: str,
        metric: str,
        dimensions: Mapping[str, str],
        since: datetime,
        until: datetime,
        client: Any = None,
    ) -> float:
        """`metric_sum` through aiobotocore (triggers); pass an open `client` to reuse it."""
        if client is None:
            async with await self.get_async_conn() as client:
                return await self.metric_sum_async(namespace, metric, dimensions, since, until, client)
        self.metric_calls += 1
        response = await client.get_metric_statistics(
            **_stats_request(namespace, metric, dimensions, since, until)
        )
        return sum(point["Sum"] for point in response["Datapoints"])
