"""The lambda deployer against the moto server, through the Airflow connection `aws_default`."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from handsoff.deployers.base import DeployContext, RestoreImpossible
from handsoff.deployers.registry import get_deployer
from handsoff.model.records import LedgerEntry

REGION = "us-east-1"
SPEC = {"type": "lambda", "function": "orders", "alias": "live", "region": REGION}
CANARY = {**SPEC, "canary": {"percent": 10, "bake": "10m"}}


def _zip(tmp_path: Path, commit: str) -> Path:
    path = tmp_path / commit / "app.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.py", f"def handler(event, context):\n    return {commit!r}\n")
    return path


def _sha(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def _ctx(commit: str, artifact: Path, previous: LedgerEntry | None = None) -> DeployContext:
    return DeployContext(
        pipeline="orders",
        stage="prod",
        wave="onebox",
        target="use1",
        target_fields={"name": "use1", "region": REGION},
        commit=commit,
        run_id=f"run-{commit}",
        artifact=artifact,
        previous=previous,
    )


def _entry(commit: str, detail: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(commit=commit, run_id=f"run-{commit}", time="t", detail=detail)


@pytest.fixture
def lam(aws, tmp_path: Path):
    """A function `orders` (no alias yet) in moto; returns a boto3 Lambda client."""
    role = aws.client("iam").create_role(RoleName="orders", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client = aws.client("lambda", REGION)
    code = _zip(tmp_path, "initial").read_bytes()
    client.create_function(
        FunctionName="orders",
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code},
    )
    return client


def _alias(lam) -> dict[str, Any]:
    return lam.get_alias(FunctionName="orders", Name="live")


def _weights(lam) -> dict[str, float]:
    return _alias(lam).get("RoutingConfig", {}).get("AdditionalVersionWeights", {})


def _code_of(lam, version: str) -> str:
    return lam.get_function(FunctionName="orders", Qualifier=version)["Configuration"]["CodeSha256"]


def test_deploy_points_the_alias_at_a_version_with_the_new_code(lam, tmp_path: Path):
    deployer = get_deployer(SPEC)
    assert deployer.current_version(_ctx("c1", _zip(tmp_path, "c1"))) is None

    first = deployer.deploy(_ctx("c1", tmp_path / "c1" / "app.zip"))
    new = _zip(tmp_path, "c2")
    detail = deployer.deploy(_ctx("c2", new, _entry("c1", first)))

    expected = {"function": "orders", "alias": "live", "version": detail["version"], "region": REGION}
    assert detail == expected
    assert detail["version"] != first["version"]
    assert _alias(lam)["FunctionVersion"] == detail["version"]
    assert _code_of(lam, detail["version"]) == _sha(new)
    assert deployer.current_version(_ctx("c2", new)) == detail["version"]


def test_rollback_restores_exactly_the_previous_version_twice(lam, tmp_path: Path):
    deployer = get_deployer(SPEC)
    first = deployer.deploy(_ctx("c1", _zip(tmp_path, "c1")))
    ctx = _ctx("c2", _zip(tmp_path, "c2"), _entry("c1", first))
    deployer.deploy(ctx)

    for _ in range(2):
        assert deployer.rollback(ctx)["version"] == first["version"]
        assert _alias(lam)["FunctionVersion"] == first["version"]
        assert _weights(lam) == {}
    assert _code_of(lam, first["version"]) == _sha(tmp_path / "c1" / "app.zip")


def test_canary_splits_traffic_then_promote_shifts_all_of_it(lam, tmp_path: Path):
    deployer = get_deployer(CANARY)
    assert deployer.canary_bake() == timedelta(minutes=10)
    first = deployer.deploy(_ctx("c1", _zip(tmp_path, "c1")))
    assert first["canary"] == "skipped"  # no alias before: nothing to split with
    assert _alias(lam)["FunctionVersion"] == first["version"]

    ctx = _ctx("c2", _zip(tmp_path, "c2"), _entry("c1", first))
    canary = deployer.deploy(ctx)
    new = canary["version"]
    assert (canary["canary_version"], canary["previous_version"]) == (new, first["version"])
    assert _alias(lam)["FunctionVersion"] == first["version"]
    assert _weights(lam) == {new: 0.1}

    final = deployer.promote(ctx, canary)
    assert final == {
        "function": "orders",
        "alias": "live",
        "version": new,
        "region": REGION,
        "previous_version": first["version"],
    }
    assert _alias(lam)["FunctionVersion"] == new
    assert _weights(lam) == {}


def test_rollback_during_a_canary_clears_the_routing(lam, tmp_path: Path):
    deployer = get_deployer(CANARY)
    first = deployer.deploy(_ctx("c1", _zip(tmp_path, "c1")))
    ctx = _ctx("c2", _zip(tmp_path, "c2"), _entry("c1", first))
    deployer.deploy(ctx)
    assert _weights(lam)

    deployer.rollback(ctx)
    assert _alias(lam)["FunctionVersion"] == first["version"]
    assert _weights(lam) == {}


def test_observe_sees_the_alias_version_and_routing_or_its_absence(lam, tmp_path: Path):
    deployer = get_deployer(SPEC)
    ctx = _ctx("c1", _zip(tmp_path, "c1"))
    assert deployer.observe(ctx) == {
        "function": "orders",
        "alias": "live",
        "version": None,
        "region": REGION,
        "absent": True,
    }
    lam.publish_version(FunctionName="orders")
    lam.create_alias(
        FunctionName="orders",
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    assert deployer.observe(ctx) == {
        "function": "orders",
        "alias": "live",
        "version": "1",
        "region": REGION,
        "routing": {},
    }


def test_a_failed_canary_gives_the_alias_back_as_it_was(lam, tmp_path: Path):
    lam.publish_version(FunctionName="orders")
    lam.create_alias(FunctionName="orders", Name="live", FunctionVersion="1")  # made outside handsoff
    deployer = get_deployer(CANARY)
    ctx = _ctx("c2", _zip(tmp_path, "c2"))
    before = deployer.observe(ctx)
    canary = {**deployer.deploy(ctx), "before": before}
    assert _weights(lam) == {canary["version"]: 0.1}

    deployer.abort_canary(ctx, canary)

    assert (_alias(lam)["FunctionVersion"], _weights(lam)) == ("1", {})


def test_rollback_past_the_first_deploy_restores_what_ran_before_or_deletes_an_alias_handsoff_made(
    lam, tmp_path: Path
):
    deployer = get_deployer(SPEC)
    ctx = _ctx("c1", _zip(tmp_path, "c1"))
    absent = deployer.observe(ctx)
    deployer.deploy(ctx)
    ctx = _ctx("c1", tmp_path / "c1" / "app.zip", _entry("", absent))

    for _ in range(2):
        assert deployer.rollback(ctx)["version"] is None
        assert lam.list_aliases(FunctionName="orders")["Aliases"] == []
        assert deployer.current_version(ctx) is None
    assert lam.get_function(FunctionName="orders")["Configuration"]["FunctionName"] == "orders"


def test_rollback_needs_a_version_in_the_previous_entry(lam, tmp_path: Path):
    ctx = _ctx("c2", _zip(tmp_path, "c2"), _entry("c1", {}))
    with pytest.raises(RestoreImpossible, match=r"\(commit c1\) has no Lambda version"):
        get_deployer(SPEC).rollback(ctx)


def test_a_version_that_was_deleted_is_not_restored_and_the_alias_stays(lam, tmp_path: Path):
    deployer = get_deployer(SPEC)
    first = deployer.deploy(_ctx("c1", _zip(tmp_path, "c1")))
    second = deployer.deploy(_ctx("c2", _zip(tmp_path, "c2")))
    lam.delete_function(FunctionName="orders", Qualifier=first["version"])

    with pytest.raises(
        RestoreImpossible, match=f"version {first['version']} of Lambda function 'orders' no longer"
    ):
        deployer.rollback(_ctx("c2", tmp_path / "c2" / "app.zip", _entry("c1", first)))
    assert _alias(lam)["FunctionVersion"] == second["version"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"region": "eu-west-1"}, "Lambda function 'orders' not found in region eu-west-1"),
        ({"function": "payments"}, "Lambda function 'payments' not found in region us-east-1"),
    ],
)
def test_a_missing_function_is_named(lam, tmp_path: Path, fields: dict[str, str], message: str):
    deployer = get_deployer({**SPEC, **fields})
    ctx = _ctx("c1", _zip(tmp_path, "c1"))
    with pytest.raises(ValueError, match=message):
        deployer.deploy(ctx)
    with pytest.raises(ValueError, match=message):
        deployer.observe(ctx)
