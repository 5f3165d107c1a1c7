"""AWS for the tests: a moto server over real HTTP, and alarms made in it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable
from typing import Any


class MotoServer:
    """A moto server over real HTTP on 127.0.0.1: the AWS endpoint of the tests."""

    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, service: str, region: str = "us-east-1"):
        """A boto3 client of `service` against the server (test setup and assertions)."""
        import boto3

        creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        return boto3.client(service, region_name=region, endpoint_url=self.url, **creds)

    def reset(self) -> None:
        """Forget every resource (moto's reset endpoint)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10)


def put_alarms(cloudwatch: Any, names: Iterable[str], state: str | None = None) -> None:
    """Create metric alarms through the API (moto starts them in OK; AWS in INSUFFICIENT_DATA), then
    set `state` on each when given."""
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
        if state:
            cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def bulk_alarms(
    names: Iterable[str], state: str = "OK", region: str = "us-east-1", rule: str | None = None
) -> None:
    """Many alarms at once, straight into the moto server's in-process backend (250 API calls take 3 s).

    `rule` makes composite alarms, which moto's API cannot create (no PutCompositeAlarm).
    """
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
    for name in names:
        backend.put_metric_alarm(
            name=name,
            namespace="AWS/Lambda",
            metric_name="Errors",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            period=60,
            threshold=1,
            statistic="Sum",
            description="",
            dimensions=[],
            alarm_actions=[],
            rule=rule,
        )
        if state != "OK":
            backend.set_alarm_state(name, "test", None, state)


class SerialMotoServer:
    """A moto server over real HTTP that answers one request at a time, as S3 evaluates a conditional
    write: atomically. (moto's threaded server checks a condition and writes in two steps, so racing
    conditional PUTs could both pass there, which real S3 never lets happen.)"""

    def __init__(self) -> None:
        import threading

        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        self._server = make_server(
            "127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=False
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def connection(self) -> str:
        """An Airflow AWS connection (JSON) pointing at this server."""
        import json

        extra = {"region_name": "us-east-1", "endpoint_url": self.url}
        return json.dumps({"conn_type": "aws", "login": "test", "password": "test", "extra": extra})

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        self._server.shutdown()
        self._thread.join(timeout=10)
