"""The shipped Lambda example (pipeline_specs/greeter-lambda.json) on the AWS resources that `make demo`
creates (scripts/demo_aws.py), against the moto server over HTTP: a run moves every alias to the new
version; with a target's alarm set, the next run fails at that wave's bake and rolls the aliases back.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest
from support.repos import REPO_ROOT

PIPELINE = "greeter-lambda"
TARGETS = ["beta-pdx", "onebox-iad", "iad", "pdx", "dub"]


def _demo_aws() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_aws", REPO_ROOT / "scripts" / "demo_aws.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _aliases(demo_aws: ModuleType, aws, specs) -> dict[str, str]:
    found = {}
    for fn in demo_aws.lambda_targets(specs):
        aws_lambda = demo_aws.client("lambda", fn.region, aws.url)
        alias = aws_lambda.get_alias(FunctionName=fn.function, Name=fn.alias)
        assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights"), alias
        found[fn.target] = alias["FunctionVersion"]
    return found


def _published(demo_aws: ModuleType, aws, specs) -> dict[str, list[str]]:
    return {
        fn.target: sorted(
            v["Version"]
            for v in demo_aws.client("lambda", fn.region, aws.url).list_versions_by_function(
                FunctionName=fn.function
            )["Versions"]
            if v["Version"] != "$LATEST"
        )
        for fn in demo_aws.lambda_targets(specs)
    }


@pytest.mark.slow
def test_the_lambda_example_deploys_every_alias_and_an_alarm_rolls_them_back(airflow_db, example_specs, aws):
    from handsoff.factory.loader import load_dags

    specs, repo, _ = example_specs
    demo_aws = _demo_aws()
    assert demo_aws.setup(aws.url, specs) == 0
    assert [fn.target for fn in demo_aws.lambda_targets(specs)] == TARGETS
    assert _aliases(demo_aws, aws, specs) == dict.fromkeys(TARGETS, "1")  # what ran before handsoff
    dag = load_dags(specs)[PIPELINE]

    first = repo.commit("greeter: first through Lambda")
    assert dag.test(run_conf={"commit": first}).state == "success"
    assert _aliases(demo_aws, aws, specs) == dict.fromkeys(TARGETS, "2")

    assert demo_aws.set_alarm(aws.url, "onebox-iad", "ALARM", specs) == 0
    second = repo.commit("greeter: a change that raises errors")
    run = dag.test(run_conf={"commit": second})

    assert run.state == "failed"
    # beta and the one-box got version 3 and were put back on 2 (scope "all"); the rest never got 3
    assert _aliases(demo_aws, aws, specs) == dict.fromkeys(TARGETS, "2")
    published = _published(demo_aws, aws, specs)
    assert published == {
        "beta-pdx": ["1", "2", "3"],
        "onebox-iad": ["1", "2", "3"],
        "iad": ["1", "2"],
        "pdx": ["1", "2"],
        "dub": ["1", "2"],
    }
