"""The cloudformation deployer against the moto server, through the Airflow connection `aws_default`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from handsoff.deployers.base import DeployContext
from handsoff.deployers.registry import get_deployer
from handsoff.model.records import LedgerEntry

REGION = "us-east-1"
TEMPLATE = "infra/stack.json"
SPEC = {
    "type": "cloudformation",
    "stack": "orders",
    "template": TEMPLATE,
    "parameters": {"Version": "${commit}"},
    "region": REGION,
}


def _template(prefix: str) -> str:
    """A stack holding one SSM parameter whose value is `prefix`-<the Version parameter>."""
    value = {"Fn::Join": ["-", [prefix, {"Ref": "Version"}]]}
    return json.dumps(
        {
            "Parameters": {"Version": {"Type": "String", "Default": "none"}},
            "Resources": {
                "VersionParameter": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {"Name": "/orders/version", "Type": "String", "Value": value},
                }
            },
        },
        indent=2,
    )


def _artifact(tmp_path: Path, commit: str, body: str | None) -> Path:
    """The build output of `commit`: a zip holding the template (None: a zip without it)."""
    path = tmp_path / commit / "app.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app/main.py", "print('orders')\n")
        if body is not None:
            archive.writestr(TEMPLATE, body)
    return path


def _ctx(
    commit: str, artifact: Path | None, previous: LedgerEntry | None = None, workdir: Path | None = None
) -> DeployContext:
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
        workdir=workdir,
    )


def _entry(commit: str, detail: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(commit=commit, run_id=f"run-{commit}", time="t", detail=detail)


@pytest.fixture
def cfn(aws):
    """A boto3 CloudFormation client (the stack does not exist yet)."""
    return aws.client("cloudformation", REGION)


def _stack(cfn) -> dict[str, Any]:
    stack = cfn.describe_stacks(StackName="orders")["Stacks"][0]
    body = cfn.get_template(StackName="orders")["TemplateBody"]  # boto3 hands JSON templates back parsed
    return {"status": stack["StackStatus"], "parameters": stack.get("Parameters", []), "body": body}


def _ssm_value(aws) -> str:
    return aws.client("ssm", REGION).get_parameter(Name="/orders/version")["Parameter"]["Value"]


def test_deploy_creates_then_updates_the_stack_from_the_artifact(aws, cfn, tmp_path: Path):
    deployer = get_deployer(SPEC)
    assert deployer.current_version(_ctx("c1", None)) is None
    deployer.deploy(_ctx("c1", _artifact(tmp_path, "c1", _template("a"))))
    assert _ssm_value(aws) == "a-c1"
    first_version = deployer.current_version(_ctx("c1", None))

    body = _template("b")
    detail = deployer.deploy(_ctx("c2", _artifact(tmp_path, "c2", body)))

    assert detail["stack"] == "orders"
    assert (detail["template_body"], detail["parameters"]) == (body, {"Version": "c2"})
    assert detail["change_set"].startswith("arn:aws:cloudformation:us-east-1:")
    assert _stack(cfn) == {
        "status": "UPDATE_COMPLETE",
        "parameters": [{"ParameterKey": "Version", "ParameterValue": "c2"}],
        "body": json.loads(body),
    }
    assert _ssm_value(aws) == "b-c2"
    assert deployer.current_version(_ctx("c2", None)) not in (None, first_version)


@pytest.mark.parametrize(
    "parameters", [{"Version": "${commit}"}, {}], ids=["with-parameters", "no-parameters"]
)
def test_deploying_identical_input_twice_succeeds(cfn, tmp_path: Path, parameters: dict[str, str]):
    deployer = get_deployer({**SPEC, "parameters": parameters})
    ctx = _ctx("c1", _artifact(tmp_path, "c1", _template("a")))
    first = deployer.deploy(ctx)

    again = deployer.deploy(ctx)

    assert again == {**first, "change_set": None}
    assert _stack(cfn)["status"] == "CREATE_COMPLETE"


def test_rollback_restores_exactly_the_previous_template_and_parameters_twice(aws, cfn, tmp_path: Path):
    deployer = get_deployer(SPEC)
    first = deployer.deploy(_ctx("c1", _artifact(tmp_path, "c1", _template("a"))))
    before, version = _stack(cfn), deployer.current_version(_ctx("c1", None))
    ctx = _ctx("c2", _artifact(tmp_path, "c2", _template("b")), _entry("c1", first))
    deployer.deploy(ctx)

    for _ in range(2):
        deployer.rollback(ctx)
        assert {**_stack(cfn), "status": None} == {**before, "status": None}
        assert _ssm_value(aws) == "a-c1"
        assert deployer.current_version(ctx) == version


def test_a_stack_handsoff_created_is_deleted_by_a_rollback_past_its_first_deploy(cfn, tmp_path: Path):
    deployer = get_deployer(SPEC)
    ctx = _ctx("c1", _artifact(tmp_path, "c1", _template("a")))
    absent = deployer.observe(ctx)
    assert absent == {"stack": "orders", "region": "us-east-1", "absent": True}
    deployer.deploy(ctx)
    ctx = _ctx("c1", tmp_path / "c1" / "app.zip", _entry("", absent))

    for _ in range(2):
        assert deployer.rollback(ctx) == {"stack": "orders", "deleted": True}
        assert [
            s["StackName"] for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]
        ] == []
        assert deployer.current_version(ctx) is None


def test_the_template_comes_from_the_checkout_when_the_artifact_lacks_it(cfn, tmp_path: Path):
    workdir = tmp_path / "src"
    (workdir / "infra").mkdir(parents=True)
    (workdir / TEMPLATE).write_text(_template("checkout"))

    get_deployer(SPEC).deploy(_ctx("c1", _artifact(tmp_path, "c1", None), workdir=workdir))

    assert _stack(cfn)["body"] == json.loads(_template("checkout"))


def test_a_missing_template_is_named(cfn, tmp_path: Path):
    ctx = _ctx("c1", _artifact(tmp_path, "c1", None), workdir=tmp_path)
    with pytest.raises(
        ValueError, match="template 'infra/stack.json' of stack 'orders' is neither in the artifact"
    ):
        get_deployer(SPEC).deploy(ctx)


def test_rollback_of_a_stack_missing_in_the_region_is_named(cfn, tmp_path: Path):
    first = get_deployer(SPEC).deploy(_ctx("c1", _artifact(tmp_path, "c1", _template("a"))))
    ctx = _ctx("c2", None, _entry("c1", first))
    with pytest.raises(ValueError, match="CloudFormation stack 'orders' not found in region eu-west-1"):
        get_deployer({**SPEC, "region": "eu-west-1"}).rollback(ctx)
