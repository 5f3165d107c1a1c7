"""dict → model: the example's model, placeholders, nearest-wins deployers, bakes, sources, durations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from handsoff.model import Build, Coverage, DeployerSpec, Source, Step, TestSuite
from handsoff.spec import SpecError, SpecErrors, format_duration, load_pipeline, parse_duration
from handsoff.spec.resolve import resolve_pipeline
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", minutes(5)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5 minutes", "5", "m", "1.5h", "-1h", "1w", "", " 5m"])
def test_parse_duration_rejects_other_text(text):
    with pytest.raises(SpecError, match="is not a duration like 30s, 5m, 1h or 2d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(0), "0s"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(seconds=90.9), "1m30s"),
    ],
)
def test_format_duration(value, expected):
    assert format_duration(value) == expected


def test_format_duration_rejects_negative():
    with pytest.raises(ValueError, match="negative duration"):
        format_duration(timedelta(seconds=-1))


@settings(max_examples=50)
@given(st.integers(min_value=0, max_value=10**8))
def test_format_then_parse_round_trips_each_unit(seconds):
    text = format_duration(timedelta(seconds=seconds))
    total = sum(parse_duration(part + unit).total_seconds() for part, unit in _split(text))

    assert total == seconds


def _split(text: str) -> list[tuple[str, str]]:
    parts, number = [], ""
    for char in text:
        if char.isdigit():
            number += char
        else:
            parts.append((number, char))
            number = ""
    return parts
