"""Exact rollback under everyday operations: whole pipelines under `dag.test()` against moto over HTTP.

Adopting resources made outside handsoff, an artifact removed by a retention rule, a canary on a target's
first handsoff deploy, a spec edited (or broken) between a deploy and its rollback. After each: what runs on
every target is what ran before, or the rollback refused naming the target and changed nothing, and the
ledger says what truly runs.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from support.lambda_pipeline import PIPELINE, WAVES, lambda_spec, live_version
from support.runs import run_rollback, task_states

TEMPLATE = "infra/stack.json"


def _load(specs: Path, spec: dict, pipeline: str) -> dict:
    from handsoff.factory.loader import load_dags

    (specs / f"{pipeline}.json").write_text(json.dumps(spec, indent=2))
    return load_dags(specs)


def _ledger(store: Path, pipeline: str, target: str) -> dict:
    return json.loads((store / pipeline / "ledger" / f"{target}.json").read_text())


def _queue_template(name: str) -> str:
    return json.dumps(
        {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}}}
    )


def _one_wave(name: str, store: Path, repo: Path, deploy: dict, test: str = "exit 1", **target) -> dict:
    """Build, then one stage with one target whose smoke test runs `test` (by default it fails)."""
    return {
        "pipeline": name,
        "source": {"repo": str(repo), "branch": "main"},
        "artifacts": {"store": store.as_uri()},
        "build": {"steps": [{"name": "compile", "command": "make build"}], "artifact": "dist/greeter.zip"},
        "deploy": deploy,
        "stages": [
            {
                "name": "prod",
                "waves": [{"name": "one", "targets": [{"name": "t1", "region": "us-east-1", **target}]}],
                "tests": [{"name": "smoke", "command": test}],
            }
        ],
    }


@pytest.mark.slow
def test_a_stack_made_by_hand_goes_back_to_its_own_template_it_is_never_deleted(setup):
    specs, repo, store, aws = setup
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="orders-prod", TemplateBody=_queue_template("made-by-hand"))
    commit = repo.commit("the stack in the repo", files={TEMPLATE: _queue_template("from-the-pipeline")})
    deploy = {"type": "cloudformation", "stack": "orders-prod", "template": TEMPLATE}
    dag = _load(specs, _one_wave("orders-infra", store, repo.bare, deploy), "orders-infra")["orders-infra"]

    run = dag.test(run_conf={"commit": commit})

    assert run.state == "failed" and task_states(run)["rollback.prod.one"] == "success"
    [stack] = cfn.describe_stacks(StackName="orders-prod")["Stacks"]  # still there
    body = cfn.get_template(StackName="orders-prod")["TemplateBody"]
    assert json.loads(body if isinstance(body, str) else json.dumps(body)) == json.loads(
        _queue_template("made-by-hand")
    )
    current = _ledger(store, "orders-infra", "t1")["current"]  # it runs what ran before handsoff
    assert (current["commit"], current["action"]) == ("", "rollback")
    assert json.loads(current["detail"]["template_body"]) == json.loads(_queue_template("made-by-hand"))


@pytest.mark.slow
@pytest.mark.parametrize("knows_what_ran", [True, False])
def test_a_command_target_that_ran_something_before_handsoff_is_restored_or_left_never_removed(
    setup, tmp_path, knows_what_ran
):
    specs, repo, store, _ = setup
    folder = tmp_path / "fleet" / "t1"
    folder.mkdir(parents=True)
    (folder / "VERSION").write_text("v0.9\n")  # deployed before handsoff
    deploy = {
        "type": "command",
        "deploy": 'echo "$HANDSOFF_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"',
        # restores a commit's artifact, or a version from before handsoff, or removes the target
        "rollback": 'if [ -n "$HANDSOFF_PREVIOUS_CURRENT" ]; then echo "$HANDSOFF_PREVIOUS_CURRENT" > '
        '"$HANDSOFF_TARGET_DIR/VERSION"; else rm -rf "$HANDSOFF_TARGET_DIR"; fi',
    }
    if knows_what_ran:
        deploy["current"] = 'cat "$HANDSOFF_TARGET_DIR/VERSION" 2>/dev/null || true'
    dag = _load(specs, _one_wave("orders-cmd", store, repo.bare, deploy, dir=str(folder)), "orders-cmd")[
        "orders-cmd"
    ]
    commit = repo.commit("change")

    run = dag.test(run_conf={"commit": commit})

    assert run.state == "failed"
    states = task_states(run)
    if knows_what_ran:  # restored exactly what ran before handsoff
        assert states["rollback.prod.one"] == "success"
        assert (folder / "VERSION").read_text() == "v0.9\n"
    else:  # unknown: refused, loudly; the target is not removed and the ledger says what runs
        assert states["rollback.prod.one"] == "failed"
        assert (folder / "VERSION").read_text().strip() == commit
        assert _ledger(store, "orders-cmd", "t1")["current"]["commit"] == commit


@pytest.mark.slow
def test_a_rollback_to_an_artifact_that_expired_refuses_and_the_ledger_stays_true(
    airflow_db, example_specs, capsys
):
    from handsoff.cli import main

    specs, repo, fleet = example_specs
    store = specs.parent / "store"
    spec = json.loads((specs / "greeter-app.json").read_text())
    spec["artifacts"] = {"store": store.as_uri()}
    dags = _load(specs, spec, "greeter-app")
    good = repo.commit("good")
    assert dags["greeter-app"].test(run_conf={"commit": good}).state == "success"
    shutil.rmtree(store / "greeter-app" / "artifacts" / good)  # an object-store lifecycle rule
    spec["stages"][0]["tests"][0]["command"] = "exit 1"  # alpha's integration tests now fail
    dags = _load(specs, spec, "greeter-app")
    bad = repo.commit("bad")

    run = dags["greeter-app"].test(run_conf={"commit": bad})

    assert run.state == "failed" and task_states(run)["rollback.alpha.alpha"] == "failed"
    assert (fleet / "greeter-app" / "alpha-pdx" / "VERSION").read_text().strip() == bad  # not removed
    current = _ledger(store, "greeter-app", "alpha-pdx")["current"]
    assert (current["commit"], current["action"]) == (bad, "deploy")  # the ledger says what runs
    assert main(["status", "greeter-app", "--specs", str(specs)]) == 0
    warning = (
        f"! alpha-pdx: the artifact of {good[:12]}, its earlier version, is gone: a rollback would refuse"
    )
    assert warning in capsys.readouterr().out.splitlines()


@pytest.mark.slow
def test_a_failed_canary_on_a_first_handsoff_deploy_leaves_no_traffic_on_the_new_version(setup):
    specs, repo, store, aws = setup
    spec = lambda_spec(repo.bare, "all", bakes=("1s", "1s", "1s"))
    spec["stages"][0]["waves"] = spec["stages"][0]["waves"][:1]
    spec["deploy"]["canary"] = {"percent": 10, "bake": "6s"}
    dag = _load(specs, spec, PIPELINE)[PIPELINE]
    lam, cloudwatch = aws.client("lambda", "us-east-1"), aws.client("cloudwatch", "us-east-1")
    name = "orders-use1-onebox"

    def alarm_during_the_canary() -> None:
        for _ in range(600):
            routing = lam.get_alias(FunctionName=name, Name="live").get("RoutingConfig", {})
            if routing.get("AdditionalVersionWeights"):
                cloudwatch.set_alarm_state(AlarmName=f"{name}-errors", StateValue="ALARM", StateReason="t")
                return
            time.sleep(0.2)

    incident = threading.Thread(target=alarm_during_the_canary, daemon=True)
    incident.start()
    run = dag.test(run_conf={"commit": repo.commit("bad")})
    incident.join(timeout=5)

    assert run.state == "failed"
    alias = lam.get_alias(FunctionName=name, Name="live")  # live → 1 was made outside handsoff
    assert (alias["FunctionVersion"], alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})) == (
        "1",
        {},
    )
    record = _ledger(store, PIPELINE, "use1-onebox")
    assert record["current"] is None  # handsoff never made it run anything
    [event] = record["history"]
    assert event["action"] == "canary-failed" and "is in ALARM" in event["note"]


@pytest.mark.slow
def test_a_rollback_restores_where_the_deploy_happened_whatever_the_spec_says_since(setup):
    specs, repo, store, aws = setup
    spec = lambda_spec(repo.bare, "wave", bakes=("1s", "1s", "1s"))
    dags = _load(specs, spec, PIPELINE)
    for change in ("first", "second"):
        assert dags[PIPELINE].test(run_conf={"commit": repo.commit(change)}).state == "success"
    lam = aws.client("lambda", "us-east-1")
    role = aws.client("iam").get_role(RoleName="orders")["Role"]["Arn"]
    lam.create_function(
        FunctionName="orders-v2", Runtime="python3.12", Role=role, Handler="x", Code={"ZipFile": b"x"}
    )
    assert {live_version(aws, t, r) for _, t, r in WAVES} == {"3"}
    # the spec now points every target at another function, renames use1 and drops usw2
    spec["deploy"]["function"] = "orders-v2"
    waves = spec["stages"][0]["waves"]
    waves[1]["targets"][0]["name"] = "use1-renamed"
    spec["stages"][0]["waves"] = waves[:2]
    dags = _load(specs, spec, PIPELINE)

    run = run_rollback(
        dags[f"{PIPELINE}__rollback"], scope="target", targets=["use1-onebox", "use1", "usw2"], reason="x"
    )

    assert run.state == "success", task_states(run)
    assert {live_version(aws, t, r) for _, t, r in WAVES} == {"2"}  # back on the functions that ran it
    assert lam.list_aliases(FunctionName="orders-v2")["Aliases"] == []  # another function: untouched
    # and a broken spec keeps its rollback DAG: the ledger knows where everything is
    (specs / f"{PIPELINE}.json").write_text(json.dumps({**spec, "stages": [{"name": "typo", "wavez": []}]}))
    from handsoff.factory.loader import load_dags

    dags = load_dags(specs)
    assert PIPELINE not in dags
    run = run_rollback(dags[f"{PIPELINE}__rollback"], scope="target", targets=["usw2"], to="", reason="y")
    assert run.state == "success", task_states(run)
    assert live_version(aws, "usw2", "us-west-2") == "1"  # what ran before handsoff's first deploy
