"""The demo's AWS side, on the local moto server that `make demo` starts (run with the venv's python).

    demo_aws.py setup --endpoint URL            # every Lambda pipeline's functions and alarms
    demo_aws.py alarm TARGET --endpoint URL     # the target's rollback alarm(s) → ALARM (--ok: → OK)
    demo_aws.py aliases --endpoint URL          # what each function's `live` alias serves

The functions and alarms are read from the Lambda pipelines in pipeline_specs/ (function and alarm names
with placeholders already filled), so the spec stays the one place that names them. Each function starts
with version 1 (the greeter as it was before handsoff) behind its alias: the first deploy has something
to roll back to.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
from handsoff.model.pipeline import Pipeline
from handsoff.spec.load import load_all

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "pipeline_specs"
# moto accepts any key; these are the demo connection's, never real ones
CREDENTIALS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo-secret"}
INITIAL_CODE = "def handler(event, context):\n    return {'greeting': 'Hello from version 1'}\n"


@dataclass(frozen=True)
class DemoFunction:
    """One Lambda target of a demo pipeline: where it runs and what watches it."""

    pipeline: str
    target: str
    region: str
    function: str
    alias: str
    alarms: tuple[tuple[str, str], ...]  # (alarm name, region)


def lambda_targets(specs: Path = SPECS) -> Iterator[DemoFunction]:
    """Every target deployed by a `lambda` deployer in the specs."""
    result = load_all(specs)
    for pipeline in result.pipelines.values():
        yield from _targets(pipeline)


def _targets(pipeline: Pipeline) -> Iterator[DemoFunction]:
    for stage in pipeline.stages:
        for wave in stage.waves:
            for target in wave.targets:
                if target.deployer.type != "lambda":
                    continue
                fields = target.deployer.fields
                region = fields.get("region") or target.region or "us-east-1"
                alarms = tuple((a.name, a.region or target.region or region) for a in target.rollback_alarms)
                yield DemoFunction(
                    pipeline.id, target.name, region, fields["function"], fields.get("alias", "live"), alarms
                )


def client(service: str, region: str, endpoint: str):  # noqa: ANN201 (boto3 clients have no static type)
    """A boto3 client of the moto server."""
    return boto3.client(service, region_name=region, endpoint_url=endpoint, **CREDENTIALS)


def initial_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("greeter.py", INITIAL_CODE)
    return buffer.getvalue()


def setup(endpoint: str, specs: Path = SPECS) -> int:
    """Create each Lambda target's function (version 1 behind its alias) and its OK rollback alarms."""
    role = client("iam", "us-east-1", endpoint).create_role(
        RoleName="greeter-demo", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    for fn in lambda_targets(specs):
        aws_lambda = client("lambda", fn.region, endpoint)
        aws_lambda.create_function(
            FunctionName=fn.function,
            Runtime="python3.11",
            Role=role,
            Handler="greeter.handler",
            Code={"ZipFile": initial_zip()},
        )
        version = aws_lambda.publish_version(FunctionName=fn.function)["Version"]
        aws_lambda.create_alias(FunctionName=fn.function, Name=fn.alias, FunctionVersion=version)
        for name, region in fn.alarms:
            cloudwatch = client("cloudwatch", region, endpoint)
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                MetricName="Errors",
                Namespace="AWS/Lambda",
                Dimensions=[{"Name": "FunctionName", "Value": fn.function}],
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="demo: healthy")
        alarms = ", ".join(name for name, _ in fn.alarms) or "no alarm"
        print(f"{fn.pipeline}: Lambda {fn.function} ({fn.region}) {fn.alias} → version {version}; {alarms}")
    return 0


def set_alarm(endpoint: str, target: str, state: str, specs: Path = SPECS) -> int:
    """Set the rollback alarms of `target` (in every Lambda pipeline) to `state`."""
    found = [fn for fn in lambda_targets(specs) if fn.target == target]
    if not found:
        names = sorted({fn.target for fn in lambda_targets(specs)})
        print(f"demo: no Lambda target {target!r}; targets: {', '.join(names)}", file=sys.stderr)
        return 2
    for fn in found:
        for name, region in fn.alarms:
            client("cloudwatch", region, endpoint).set_alarm_state(
                AlarmName=name, StateValue=state, StateReason=f"demo: set to {state} by hand"
            )
            print(f"alarm {name} ({region}) is now {state}")
    return 0


def aliases(endpoint: str, specs: Path = SPECS) -> int:
    """Print the version each function's alias serves."""
    for fn in lambda_targets(specs):
        alias = client("lambda", fn.region, endpoint).get_alias(FunctionName=fn.function, Name=fn.alias)
        weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights") or {}
        serves = alias["FunctionVersion"] + (f" + {weights}" if weights else "")
        print(f"  {fn.pipeline}: {fn.target} {fn.function}:{fn.alias} → version {serves}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "alarm", "aliases"])
    parser.add_argument("target", nargs="?", help="alarm: the target whose rollback alarms to set")
    parser.add_argument("--endpoint", required=True, help="the moto server, e.g. http://127.0.0.1:5055")
    parser.add_argument("--ok", action="store_true", help="alarm: set OK instead of ALARM")
    args = parser.parse_args(argv)
    if args.command == "setup":
        return setup(args.endpoint)
    if args.command == "aliases":
        return aliases(args.endpoint)
    if not args.target:
        parser.error("alarm needs a TARGET")
    return set_alarm(args.endpoint, args.target, "OK" if args.ok else "ALARM")


if __name__ == "__main__":
    sys.exit(main())
