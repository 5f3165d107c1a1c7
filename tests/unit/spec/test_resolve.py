"""dict → model: the example's model, placeholders, nearest-wins deployers, bakes, sources, durations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from handsoff.model.pipeline import Build, Coverage, DeployerSpec, Source, Step, TestSuite
from handsoff.spec import SpecErrors, load_pipeline
from handsoff.spec.resolve import resolve_pipeline

DEPLOY = {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"}


def minutes(value: int) -> timedelta:
    return timedelta(minutes=value)


def small_spec(**overrides: Any) -> dict[str, Any]:
    """One stage, two waves, three targets; `overrides` replace top-level keys."""
    return {
        "pipeline": "app",
        "source": {"repo": "/srv/git/app.git"},
        "build": {"artifact": "dist/app.zip"},
        "deploy": DEPLOY,
        "stages": [
            {
                "name": "prod",
                "waves": [
                    {"name": "first", "targets": [{"name": "use1", "region": "us-east-1", "account": "111"}]},
                    {"name": "rest", "targets": [{"name": "usw2", "region": "us-west-2"}, {"name": "euw1"}]},
                ],
            }
        ],
        **overrides,
    }


def test_example_resolves_to_the_model(specs, example):
    path = specs.write("orders-api.json", example)

    pipeline = load_pipeline(path)

    assert (pipeline.id, pipeline.spec_file, pipeline.description) == (
        "orders-api",
        str(path),
        "Orders API application code",
    )
    assert pipeline.source == Source("/srv/git/orders-api.git", "main")
    assert pipeline.build == Build(
        artifact="dist/orders-api.zip",
        steps=(
            Step("compile", "make build"),
            Step("unit-tests", "make unit-test"),
            Step("static-analysis", "make lint"),
        ),
        coverage=Coverage("make coverage", 80.0, "coverage.json"),
    )
    assert (pipeline.artifact_store, pipeline.aws_conn_id) == (
        "file:///var/lib/handsoff/artifacts",
        "aws_default",
    )
    assert [(s.name, s.tests, s.bake) for s in pipeline.stages] == [
        ("alpha", (TestSuite("integration", "make integ", 4),), minutes(5)),
        ("beta", (TestSuite("integration", "make integ", 4),), None),
        ("gamma", (TestSuite("canary", "make canary", 2),), minutes(30)),
        ("prod", (), None),
    ]
    assert [(w.name, [t.name for t in w.targets], w.bake) for s in pipeline.stages for w in s.waves] == [
        ("alpha", ["alpha"], None),
        ("beta", ["beta"], None),
        ("gamma", ["gamma-usw2", "gamma-use1"], None),
        ("onebox", ["use1-onebox"], timedelta(hours=1)),
        ("first-region", ["use1"], timedelta(hours=12)),
        ("rest", ["usw2", "euw1"], timedelta(hours=4)),
    ]
    target = pipeline.targets()[-1]
    assert (target.name, dict(target.fields), target.region, target.bake) == (
        "euw1",
        {"name": "euw1", "region": "eu-west-1"},
        "eu-west-1",
        timedelta(hours=4),
    )
    assert target.deployer == DeployerSpec("command", {"deploy": "./deploy.sh", "rollback": "./rollback.sh"})


def test_placeholders_are_filled_per_target_and_commands_left_alone(specs):
    deploy = {**DEPLOY, "deploy": "./deploy.sh ${pipeline}/${stage}/${wave} ${target.name} ${target.region}"}
    document = small_spec(
        deploy=deploy, build={"artifact": "a", "steps": [{"name": "b", "command": "echo ${HOME}"}]}
    )
    document["stages"][0]["waves"][0]["targets"][0]["deploy"] = {
        **DEPLOY,
        "rollback": "./rb.sh --account ${target.account}",
    }
    document["stages"][0]["waves"][1]["targets"].pop()  # euw1 has no region

    pipeline = load_pipeline(specs.write("app.json", document))

    assert [dict(t.deployer.fields) for t in pipeline.targets()] == [
        {"deploy": "./deploy.sh", "rollback": "./rb.sh --account 111"},
        {"deploy": "./deploy.sh app/prod/rest usw2 us-west-2", "rollback": "./rollback.sh"},
    ]
    assert pipeline.build.steps[0].command == "echo ${HOME}"


def test_runtime_placeholder_stays_for_other_deployer_types_at_every_depth():
    deployer = {
        "type": "bucket",
        "path": "s3://b/${pipeline}/${commit}",
        "env": {"TARGET": "${target.name}"},
        "args": ["${commit}", 3],
    }

    pipeline = resolve_pipeline(small_spec(deploy=deployer), "app.json", "/specs")

    assert pipeline.targets()[0].deployer == DeployerSpec(
        "bucket", {"path": "s3://b/app/${commit}", "env": {"TARGET": "use1"}, "args": ["${commit}", 3]}
    )


def test_type_key_is_never_filled():
    with pytest.raises(SpecErrors) as caught:
        resolve_pipeline(small_spec(deploy={**DEPLOY, "deploy": "${nope}"}), "app.json", "/specs")

    assert [str(issue) for issue in caught.value.issues] == [
        "app.json: $.deploy.deploy: unknown placeholder ${nope}"
    ]
    assert (
        resolve_pipeline(small_spec(deploy={"type": "${x}"}), "a.json", "/s").targets()[0].deployer.type
        == "${x}"
    )


def test_nearest_deployer_wins_whole_without_merging_levels(specs):
    document = small_spec(deploy={**DEPLOY, "timeout": "10m"})
    stage = document["stages"][0]
    stage["deploy"] = {**DEPLOY, "deploy": "./stage.sh"}
    stage["waves"][1]["deploy"] = {**DEPLOY, "deploy": "./wave.sh"}
    stage["waves"][1]["targets"][1]["deploy"] = {**DEPLOY, "deploy": "./target.sh"}

    pipeline = load_pipeline(specs.write("app.json", document))

    assert [(t.name, dict(t.deployer.fields)) for t in pipeline.targets()] == [
        ("use1", {"deploy": "./stage.sh", "rollback": "./rollback.sh"}),  # no timeout from the pipeline's
        ("usw2", {"deploy": "./wave.sh", "rollback": "./rollback.sh"}),
        ("euw1", {"deploy": "./target.sh", "rollback": "./rollback.sh"}),
    ]


def test_bake_after_a_wave_is_the_longest_of_its_targets_and_stage_bake_is_not_inherited(specs):
    document = small_spec(bake="10m")
    stage = document["stages"][0]
    stage["bake"] = "2h"
    first, rest = stage["waves"]
    first["bake"] = "20m"
    rest["targets"][0]["bake"] = "5m"  # shorter than the pipeline's 10m, used by euw1
    document["stages"].append(
        {"name": "later", "waves": [{"name": "w", "targets": [{"name": "t", "bake": "0s"}]}]}
    )

    pipeline = load_pipeline(specs.write("app.json", document))

    assert [(t.name, t.bake) for t in pipeline.targets()] == [
        ("use1", minutes(20)),
        ("usw2", minutes(5)),
        ("euw1", minutes(10)),
        ("t", timedelta(0)),
    ]
    assert [w.bake for s in pipeline.stages for w in s.waves] == [minutes(20), minutes(10), timedelta(0)]
    assert [s.bake for s in pipeline.stages] == [timedelta(hours=2), None]


def test_no_bake_anywhere_means_none(specs):
    pipeline = load_pipeline(specs.write("app.json", small_spec()))

    assert {(w.bake, t.bake) for s in pipeline.stages for w in s.waves for t in w.targets} == {(None, None)}


def test_defaults_and_optional_fields(specs):
    document = small_spec(aws_conn_id="aws_prod", tags=["a"])
    document["stages"][0]["tests"] = [{"name": "smoke", "command": "make smoke", "timeout": "90s"}]

    pipeline = load_pipeline(specs.write("app.json", document))

    assert (pipeline.artifact_store, pipeline.aws_conn_id, pipeline.tags, pipeline.owners) == (
        None,
        "aws_prod",
        ("a",),
        (),
    )
    assert pipeline.stages[0].tests == (TestSuite("smoke", "make smoke", 1, timedelta(seconds=90)),)
    assert (pipeline.build.coverage, pipeline.build.steps, pipeline.source.branch) == (None, (), "main")


@pytest.mark.parametrize(
    ("repo", "expected"),
    [
        ("../git/app.git", "{root_parent}/git/app.git"),
        ("repos/app", "{root}/repos/app"),
        ("/srv/git/app.git", "/srv/git/app.git"),
        ("https://github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("ssh://git@github.com/acme/app.git", "ssh://git@github.com/acme/app.git"),
        ("git@github.com:acme/app.git", "git@github.com:acme/app.git"),
        ("file:///srv/git/app.git", "file:///srv/git/app.git"),
    ],
)
def test_source_repo_resolves_relative_paths_against_the_specs_root(specs, repo, expected):
    path = specs.write("team/app.json", small_spec(source={"repo": repo, "branch": "release/1.2"}))

    source = load_pipeline(path, specs.root).source

    root = specs.root.absolute()
    assert source == Source(expected.format(root=root, root_parent=root.parent), "release/1.2")


def test_relative_specs_root_still_gives_an_absolute_repo(specs, monkeypatch):
    specs.write("app.json", small_spec(source={"repo": "repo.git"}))
    monkeypatch.chdir(specs.root)

    assert load_pipeline(Path("app.json")).source.repo == str(specs.root.absolute() / "repo.git")


# --- durations ----------------------------------------------------------------------------------


ALARMS_EXAMPLE: dict[str, Any] = {  # the alarm/rollback issue's spec additions, as written there
    "aws_conn_id": "aws_default",
    "deploy": {
        "type": "lambda",
        "function": "orders-api-${target.name}",
        "alias": "live",
        "region": "${target.region}",
    },
    "alarms": {
        "rollback": ["orders-api-${target.region}-high-severity", "orders-api-${target.name}-onebox"],
        "blockers": ["orders-team-aggregate-high-severity"],
        "insufficient_data": "alarm",
        "poll": "30s",
        "blocker_timeout": "2h",
    },
    "rollback": {"scope": "all"},
    "stages": [
        {
            "name": "prod",
            "waves": [
                {
                    "name": "onebox",
                    "targets": [{"name": "use1-onebox", "region": "us-east-1"}],
                    "bake": {
                        "duration": "1h",
                        "min_datapoints": {
                            "namespace": "AWS/Lambda",
                            "metric": "Invocations",
                            "dimensions": {"FunctionName": "orders-api-use1-onebox"},
                            "count": 100,
                        },
                        "max": "3h",
                    },
                }
            ],
        }
    ],
}


def test_alarm_issue_example_resolves_alarms_bake_evidence_and_the_lambda_deployer(specs):
    from handsoff.model.pipeline import AlarmPolicy, AlarmRef, BakeEvidence

    spec = {"pipeline": "orders-api", "source": {"repo": "/srv/git/o.git"}, "build": {"artifact": "a.zip"}}
    path = specs.write("orders-api.json", {**spec, **ALARMS_EXAMPLE})

    pipeline = load_pipeline(path)

    [wave] = pipeline.stages[0].waves
    [target] = wave.targets
    assert pipeline.rollback_scope == "all"
    assert target.deployer == DeployerSpec(
        "lambda", {"function": "orders-api-use1-onebox", "alias": "live", "region": "us-east-1"}
    )
    assert target.rollback_alarms == (
        AlarmRef("orders-api-us-east-1-high-severity", "us-east-1"),
        AlarmRef("orders-api-use1-onebox-onebox", "us-east-1"),
    )
    assert wave.blockers == (AlarmRef("orders-team-aggregate-high-severity", "us-east-1"),)
    assert wave.alarm_policy == AlarmPolicy("alarm", timedelta(seconds=30), timedelta(hours=2))
    assert (wave.bake, wave.bake_evidence) == (
        timedelta(hours=1),
        BakeEvidence(
            "AWS/Lambda", "Invocations", 100, timedelta(hours=3), {"FunctionName": "orders-api-use1-onebox"}
        ),
    )


def test_alarm_keys_resolve_nearest_wins_each_on_its_own(specs):
    from handsoff.model.pipeline import AlarmRef

    spec = small_spec(alarms={"rollback": ["${pipeline}-${target.name}-fatal"], "insufficient_data": "ok"})
    spec["stages"][0]["waves"][1]["alarms"] = {"rollback": [{"name": "shared", "region": "eu-west-1"}]}
    spec["stages"][0]["waves"][1]["targets"][0]["alarms"] = {"insufficient_data": "alarm"}

    pipeline = load_pipeline(specs.write("app.json", spec))

    first, rest = pipeline.stages[0].waves
    assert first.targets[0].rollback_alarms == (AlarmRef("app-use1-fatal", "us-east-1"),)
    assert [t.rollback_alarms for t in rest.targets] == [(AlarmRef("shared", "eu-west-1"),)] * 2
    assert (first.alarm_policy.insufficient_data, rest.alarm_policy.insufficient_data) == ("ok", "ok")


@pytest.mark.parametrize(
    ("alarms", "message"),
    [
        (
            {"rollback": ["x-${target.zone}"]},
            "$.alarms.rollback[0]: unknown placeholder ${target.zone} (for target 'use1')",
        ),
        (
            {"rollback": ["x-${commit}"]},
            "$.alarms.rollback[0]: ${commit} is only known at run time; an alarm name cannot use it",
        ),
        ({"insufficient_data": "maybe"}, "$.alarms.insufficient_data: 'maybe' is not one of ['alarm', 'ok']"),
        ({"poll": "often"}, "$.alarms.poll: 'often' is not a duration like 30s, 5m, 1h or 2d"),
    ],
)
def test_bad_alarms_are_reported_at_their_path(specs, alarms, message):
    with pytest.raises(SpecErrors) as caught:
        load_pipeline(specs.write("app.json", small_spec(alarms=alarms)))
    assert str(caught.value.issues[0]).split(": ", 1)[1] == message


def test_min_datapoints_needs_a_max(specs):
    spec = small_spec(
        bake={"duration": "1h", "min_datapoints": {"namespace": "n", "metric": "m", "count": 5}}
    )
    with pytest.raises(SpecErrors) as caught:
        load_pipeline(specs.write("app.json", spec))
    assert [i.path for i in caught.value.issues] == ["$.bake"]
