"""Schema and semantic checks: the example passes; each broken spec fails at the expected JSON path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from handsoff.spec import load_all, load_pipeline
from handsoff.spec.validate import schema_issues, validator

DEPLOY = {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"}
TARGET_0 = "$.stages[0].waves[0].targets[0]"


def problems(specs, document: dict[str, Any]) -> list[str]:
    """Write `document` as orders-api.json and return its issues as 'PATH: message'."""
    path = specs.write("orders-api.json", document)
    errors = load_all(specs.root).errors
    assert {issue.file for issue in errors} <= {str(path)}
    return [f"{issue.path}: {issue.message}" for issue in errors]


def test_example_spec_is_valid_and_loads_with_its_template(specs, example):
    path = specs.write("orders-api.json", example)

    pipeline = load_pipeline(path)

    assert pipeline.id == "orders-api"
    assert pipeline.tags == ("service", "tier-1")  # from templates/service.json
    assert pipeline.owners == ("orders-team",)  # the spec's own list replaces the template's
    assert load_all(specs.root).errors == []


def _target(document: dict[str, Any]) -> dict[str, Any]:
    return document["stages"][0]["waves"][0]["targets"][0]


BROKEN: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    (
        "wrong type",
        lambda d: d["stages"][0]["tests"][0].update(shards="4"),
        "$.stages[0].tests[0].shards: '4' is not of type 'integer'",
    ),
    (
        "unknown top-level key",
        lambda d: d.update(descripton="x"),
        "$.descripton: unknown key 'descripton' (did you mean 'description'?)",
    ),
    (
        "unknown stage key",
        lambda d: d["stages"][0].update(bkae="5m"),
        "$.stages[0].bkae: unknown key 'bkae' (did you mean 'bake'?)",
    ),
    (
        "unknown wave key",
        lambda d: d["stages"][3]["waves"][1].update(targts=[]),
        "$.stages[3].waves[1].targts: unknown key 'targts' (did you mean 'targets'?)",
    ),
    (
        "unknown deployer key",
        lambda d: d["deploy"].update(rolback="./x.sh"),
        "$.deploy.rolback: unknown key 'rolback' (did you mean 'rollback'?)",
    ),
    (
        "unknown build key without a close match",
        lambda d: d["build"].update(zzz=1),
        "$.build.zzz: unknown key 'zzz'",
    ),
    (
        "target key that is not a custom field (uppercase)",
        lambda d: _target(d).update(Region="us-west-2"),
        f"{TARGET_0}.Region: unknown key 'Region' (did you mean 'region'?)",
    ),
    (
        "custom target field one typo from a reserved key",
        lambda d: _target(d).update(bkae="5m"),
        f"{TARGET_0}.bkae: unknown key 'bkae' (did you mean 'bake'?)",
    ),
    (
        "custom target field that is not a string",
        lambda d: _target(d).update(account=123),
        f"{TARGET_0}.account: 123 is not of type 'string'",
    ),
    (
        "missing required key",
        lambda d: d["stages"][1].pop("waves"),
        "$.stages[1]: missing required key 'waves'",
    ),
    (
        "missing required top-level key",
        lambda d: d.pop("build"),
        "$: missing required key 'build'",
    ),
    (
        "missing deployer field",
        lambda d: d["deploy"].pop("rollback"),
        "$.deploy: missing required key 'rollback'",
    ),
    (
        "bad duration",
        lambda d: d["stages"][0].update(bake="5 minutes"),
        "$.stages[0].bake: '5 minutes' is not a duration like 30s, 5m, 1h or 2d",
    ),
    (
        "bad name",
        lambda d: d["stages"][2]["waves"][0].update(name="bad name"),
        "$.stages[2].waves[0].name: 'bad name' is not a valid name: letters, digits, '-' and '_', "
        "starting with a letter or digit, at most 63 characters",
    ),
    (
        "bad region",
        lambda d: _target(d).update(region="Oregon"),
        f"{TARGET_0}.region: 'Oregon' does not match '^[a-z]{{2}}(-[a-z]+)+-[0-9]+$'",
    ),
    ("empty stages", lambda d: d.update(stages=[]), "$.stages: [] should be non-empty"),
    (
        "zero shards",
        lambda d: d["stages"][2]["tests"][0].update(shards=0),
        "$.stages[2].tests[0].shards: 0 is less than the minimum of 1",
    ),
    (
        "unknown deployer type",
        lambda d: d["deploy"].update(type="helm"),
        "$.deploy.type: 'helm' is not one of ['command', 'lambda', 'ecs', 'cloudformation']",
    ),
    (
        "bad artifact store URL",
        lambda d: d["artifacts"].update(store="http://example.com/artifacts"),
        "$.artifacts.store: 'http://example.com/artifacts' does not match '^(file|s3)://.+'",
    ),
    (
        "duplicate stage name",
        lambda d: d["stages"][1].update(name="alpha"),
        "$.stages[1].name: duplicate stage name 'alpha' (first used at $.stages[0])",
    ),
    (
        "duplicate wave name across stages",
        lambda d: d["stages"][3]["waves"][2].update(name="beta"),
        "$.stages[3].waves[2].name: duplicate wave name 'beta' (first used at $.stages[1].waves[0])",
    ),
    (
        "duplicate target name across stages",
        lambda d: d["stages"][3]["waves"][2]["targets"][1].update(name="gamma-usw2"),
        "$.stages[3].waves[2].targets[1].name: duplicate target name 'gamma-usw2' "
        "(first used at $.stages[2].waves[0].targets[0])",
    ),
    (
        "duplicate test name in a stage",
        lambda d: d["stages"][0]["tests"].append({"name": "integration", "command": "make more"}),
        "$.stages[0].tests[1].name: duplicate test name 'integration' (first used at $.stages[0].tests[0])",
    ),
    (
        "duplicate build step name",
        lambda d: d["build"]["steps"][2].update(name="compile"),
        "$.build.steps[2].name: duplicate build step name 'compile' (first used at $.build.steps[0])",
    ),
    (
        "no deployer for one target",
        lambda d: [d.pop("deploy"), *(stage.update(deploy=DEPLOY) for stage in d["stages"][1:])],
        f"{TARGET_0}: no deployer: set deploy on the pipeline, stage, wave or target",
    ),
    (
        "unknown target placeholder",
        lambda d: d["stages"][0].update(deploy={**DEPLOY, "deploy": "./deploy.sh ${target.zone}"}),
        "$.stages[0].deploy.deploy: unknown placeholder ${target.zone} (for target 'alpha')",
    ),
    (
        "unknown placeholder, reported once for every target using the deployer",
        lambda d: d["deploy"].update(rollback="./rollback.sh ${foo}"),
        "$.deploy.rollback: unknown placeholder ${foo}",
    ),
    (
        "unclosed placeholder",
        lambda d: d["deploy"].update(rollback="./rollback.sh ${stage"),
        "$.deploy.rollback: unclosed placeholder '${stage'",
    ),
    (
        "runtime placeholder in a command deployer",
        lambda d: d["deploy"].update(deploy="./deploy.sh ${commit}"),
        "$.deploy.deploy: ${commit} is only known at run time; the command deployer cannot use it",
    ),
    (
        "wave-named-like-a-stage-task",
        lambda d: d["stages"][3]["waves"][1].update(name="bake"),
        "$.stages[3].waves[1].name: wave name 'bake' is reserved for the stage's own tasks (bake, test_*)",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_spec_reports_the_json_path(specs, example, mutate, expected):
    mutate(example)

    assert problems(specs, example) == [expected]


def test_unknown_placeholder_of_a_pipeline_deployer_names_each_target_missing_the_field(specs, example):
    example["deploy"]["deploy"] = "./deploy.sh --zone ${target.zone}"
    example["stages"][3]["waves"][2]["targets"][1]["zone"] = "euw1-az1"

    assert problems(specs, example) == [
        f"$.deploy.deploy: unknown placeholder ${{target.zone}} (for target {name!r})"
        for name in ("alpha", "beta", "gamma-usw2", "gamma-use1", "use1-onebox", "use1", "usw2")
    ]


def test_every_error_is_reported_sorted_by_path(specs, example):
    example["stages"][2]["tests"][0]["shards"] = 0
    example["stages"][0]["bkae"] = "5m"
    example["build"].pop("artifact")

    assert problems(specs, example) == [
        "$.build: missing required key 'artifact'",
        "$.stages[0].bkae: unknown key 'bkae' (did you mean 'bake'?)",
        "$.stages[2].tests[0].shards: 0 is less than the minimum of 1",
    ]


def test_all_semantic_errors_are_reported_together(specs, example):
    example["stages"][1]["name"] = "alpha"
    example["stages"][3]["waves"][0]["targets"][0]["name"] = "use1"
    example["deploy"]["deploy"] = "./deploy.sh ${commit}"

    assert problems(specs, example) == [
        "$.deploy.deploy: ${commit} is only known at run time; the command deployer cannot use it",
        "$.stages[1].name: duplicate stage name 'alpha' (first used at $.stages[0])",
        "$.stages[3].waves[1].targets[0].name: duplicate target name 'use1' "
        "(first used at $.stages[3].waves[0].targets[0])",
    ]


def test_spec_without_extends_reports_paths_as_written(specs, example):
    del example["extends"]
    example["stages"][1]["waves"].insert(0, {"name": "ghost", "remove": True})
    example["stages"][1]["waves"][1]["bake"] = "soon"

    assert problems(specs, example) == [
        "$.stages[1].waves[0]: removes 'ghost' but nothing inherited has that name",
        "$.stages[1].waves[1].bake: 'soon' is not a duration like 30s, 5m, 1h or 2d",
    ]


def test_custom_target_fields_and_target_level_deploy_are_valid(specs, example):
    target = _target(example)
    target.update(account="123456789012", cell="c1", deploy={**DEPLOY, "timeout": "10m"}, bake="1m")

    assert problems(specs, example) == []


def test_custom_field_far_from_reserved_keys_is_allowed(specs, example):
    _target(example)["deploy_role"] = "arn:aws:iam::1:role/deployer"

    assert problems(specs, example) == []


def test_partial_schema_drops_required_but_keeps_other_rules():
    template = {"stages": [{"name": "alpha", "bake": "5m"}], "deploy": {"rollback": "./r.sh"}}

    assert schema_issues(template, "t.json", partial=True) == []
    assert [str(i) for i in schema_issues({"stages": [{"nme": "alpha"}]}, "t.json", partial=True)] == [
        "t.json: $.stages[0].nme: unknown key 'nme' (did you mean 'name'?)"
    ]
    assert validator(True) is validator(True)  # compiled once
