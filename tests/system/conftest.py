"""Fixtures of the system tests: the Lambda functions and alarms of support.lambda_pipeline on moto."""

from __future__ import annotations

import pytest
from support.aws import put_alarms
from support.lambda_pipeline import WAVES, zip_bytes


@pytest.fixture
def lambdas(aws):
    """One function per target, version 1 live behind alias `live`; one OK alarm per target."""
    role = aws.client("iam").create_role(RoleName="orders", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for _, target, region in WAVES:
        client = aws.client("lambda", region)
        name = f"orders-{target}"
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": zip_bytes()},
        )
        version = client.publish_version(FunctionName=name)["Version"]
        client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
        put_alarms(aws.client("cloudwatch", region), [f"{name}-errors"])
    return aws


@pytest.fixture
def setup(airflow_db, tmp_path, lambdas, monkeypatch):
    """An empty specs root, the service repo, the store path lambda_spec uses, and moto with the functions."""
    from support.repos import make_service_repo

    specs = tmp_path / "specs"
    specs.mkdir()
    monkeypatch.setenv("HANDSOFF_SPECS_DIR", str(specs))
    repo = make_service_repo(tmp_path / "orders.git")
    store = tmp_path / "store"  # where _spec puts this test's artifact store
    return specs, repo, store, lambdas
