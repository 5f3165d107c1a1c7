"""The ecs deployer against the moto server, through the Airflow connection `aws_default`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from handsoff.deployers.base import DeployContext
from handsoff.deployers.ecs import EcsDeployer
from handsoff.deployers.registry import get_deployer
from handsoff.model.records import LedgerEntry

REGION = "us-east-1"
SPEC = {
    "type": "ecs",
    "cluster": "shop",
    "service": "orders",
    "container": "app",
    "image": "repo/orders:${commit}",
    "region": REGION,
}
SIDECAR = {"name": "envoy", "image": "envoyproxy/envoy:v1.29", "memory": 64, "essential": False}


def _ctx(commit: str, previous: LedgerEntry | None = None) -> DeployContext:
    return DeployContext(
        pipeline="orders",
        stage="prod",
        wave="onebox",
        target="use1",
        target_fields={"name": "use1", "region": REGION},
        commit=commit,
        run_id=f"run-{commit}",
        artifact=None,
        previous=previous,
    )


def _entry(commit: str, detail: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(commit=commit, run_id=f"run-{commit}", time="t", detail=detail)


@pytest.fixture
def ecs(aws, monkeypatch: pytest.MonkeyPatch):
    """Cluster `shop` with service `orders` (containers app + envoy, 2 tasks running); a boto3 ECS client."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # read by the in-process moto server
    client = aws.client("ecs", REGION)
    client.create_cluster(clusterName="shop")
    arn = client.register_task_definition(
        family="orders",
        containerDefinitions=[
            {
                "name": "app",
                "image": "repo/orders:c0",
                "memory": 256,
                "environment": [{"name": "A", "value": "1"}],
            },
            SIDECAR,
        ],
        executionRoleArn="arn:aws:iam::123456789012:role/orders-exec",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        volumes=[{"name": "scratch"}],
        tags=[{"key": "team", "value": "orders"}],
    )["taskDefinition"]["taskDefinitionArn"]
    client.create_service(cluster="shop", serviceName="orders", taskDefinition=arn, desiredCount=2)
    return client


def _running(ecs) -> str:
    return ecs.describe_services(cluster="shop", services=["orders"])["services"][0]["taskDefinition"]


def _definition(ecs, arn: str) -> dict[str, Any]:
    return ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])


def test_deploy_runs_a_new_revision_with_only_the_image_changed(ecs):
    old = _running(ecs)
    deployer = get_deployer(SPEC)

    detail = deployer.deploy(_ctx("c1abc"))

    new = _running(ecs)
    assert new.endswith("task-definition/orders:2")
    assert detail == {
        "cluster": "shop",
        "service": "orders",
        "region": "us-east-1",
        "task_definition": new,
        "previous_task_definition": old,
    }
    assert deployer.observe(_ctx("c2")) == {
        "cluster": "shop",
        "service": "orders",
        "region": "us-east-1",
        "task_definition": new,
    }
    before, after = _definition(ecs, old), _definition(ecs, new)
    app, envoy = after["taskDefinition"]["containerDefinitions"]
    assert app["image"] == "repo/orders:c1abc"
    assert app["environment"] == [{"name": "A", "value": "1"}]
    assert envoy == before["taskDefinition"]["containerDefinitions"][1]
    for key in (
        "family",
        "executionRoleArn",
        "networkMode",
        "requiresCompatibilities",
        "cpu",
        "memory",
        "volumes",
    ):
        assert after["taskDefinition"][key] == before["taskDefinition"][key]
    assert after["tags"] == [{"key": "team", "value": "orders"}]
    assert deployer.current_version(_ctx("c1abc")) == new


def test_rollback_restores_exactly_the_previous_task_definition_twice(ecs):
    deployer = get_deployer(SPEC)
    first = deployer.deploy(_ctx("c1"))
    ctx = _ctx("c2", _entry("c1", first))
    assert deployer.deploy(ctx)["task_definition"] != first["task_definition"]

    for _ in range(2):
        assert deployer.rollback(ctx)["task_definition"] == first["task_definition"]
        assert _running(ecs) == first["task_definition"]


def test_rollback_with_nothing_recorded_before_is_an_error(ecs):
    with pytest.raises(
        ValueError, match="no task definition recorded to restore ECS service 'orders' in cluster 'shop'"
    ):
        get_deployer(SPEC).rollback(_ctx("c1"))


def test_an_unknown_container_is_named_and_nothing_changes(ecs):
    old = _running(ecs)
    with pytest.raises(
        ValueError, match=r"container 'api' is not in task definition .*orders:1 \(containers: app, envoy\)"
    ):
        get_deployer({**SPEC, "container": "api"}).deploy(_ctx("c1"))
    assert _running(ecs) == old


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cluster": "warehouse"}, "ECS cluster 'warehouse' not found in region us-east-1"),
        ({"service": "payments"}, "ECS service 'payments' not found in cluster 'shop' in region us-east-1"),
        ({"region": "eu-west-1"}, "ECS cluster 'shop' not found in region eu-west-1"),
    ],
)
def test_a_missing_cluster_or_service_is_named(ecs, fields: dict[str, str], message: str):
    deployer = get_deployer({**SPEC, **fields})
    with pytest.raises(ValueError, match=message):
        deployer.deploy(_ctx("c1"))
    with pytest.raises(ValueError, match=message):
        deployer.rollback(_ctx("c2", _entry("c1", {"task_definition": "orders:1"})))


def test_a_service_that_never_stabilises_fails_within_the_bound(ecs, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MOTO_ECS_SERVICE_RUNNING")
    ecs.create_service(cluster="shop", serviceName="stuck", taskDefinition="orders:1", desiredCount=2)
    monkeypatch.setattr(EcsDeployer, "wait_timeout", timedelta(seconds=2))
    monkeypatch.setattr(EcsDeployer, "poll_seconds", 1)
    with pytest.raises(RuntimeError, match="ECS service 'stuck' in cluster 'shop' did not become stable"):
        get_deployer({**SPEC, "service": "stuck"}).deploy(_ctx("c1"))
