"""Hands-off in production: Lambda waves whose bakes watch CloudWatch alarms (moto over real HTTP).

Whole pipeline runs under `dag.test()` (triggers run inline through aiobotocore); a background thread
plays the incident: it flips an alarm when the ledger shows the bad commit reached a wave.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from support.aws import put_alarms
from support.lambda_pipeline import PIPELINE, WAVES, lambda_spec, live_version
from support.runs import task_states


def _load(specs: Path, spec: dict):
    from handsoff.factory.loader import load_dags

    (specs / f"{PIPELINE}.json").write_text(json.dumps(spec))
    return load_dags(specs)[PIPELINE]


def _when_deployed(store: Path, target: str, commit: str, action, timeout: float = 120) -> threading.Thread:
    """Run `action` once the ledger says `target` runs `commit` (the incident strikes that wave)."""
    ledger = store / PIPELINE / "ledger" / f"{target}.json"

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ledger.exists() and json.loads(ledger.read_text())["current"]["commit"] == commit:
                action()
                return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["all", "wave"])
def test_alarm_in_wave_two_rolls_back_by_scope(setup, scope):
    specs, repo, store, aws = setup
    dag = _load(specs, lambda_spec(repo.bare, scope))
    good = repo.commit("good")
    assert dag.test(run_conf={"commit": good}).state == "success"
    deployed = {target: live_version(aws, target, region) for _, target, region in WAVES}
    assert deployed == {"use1-onebox": "2", "use1": "2", "usw2": "2"}

    bad = repo.commit("bad")
    flip = lambda: aws.client("cloudwatch", "us-east-1").set_alarm_state(  # noqa: E731
        AlarmName="orders-use1-errors", StateValue="ALARM", StateReason="errors after the bad deploy"
    )
    incident = _when_deployed(store, "use1", bad, flip)
    run = dag.test(run_conf={"commit": bad})
    incident.join(timeout=5)

    assert run.state == "failed"
    states = task_states(run)
    assert states["prod.first-region.bake"] == "failed"
    assert states["prod.rest.deploy_usw2"] == "upstream_failed"  # wave 3 never touched
    assert states["outcome"] == "failed"
    assert states["rollback.prod.first-region"] == "success"
    assert states["rollback.prod.onebox"] == ("success" if scope == "all" else "skipped")
    expected_onebox = "2" if scope == "all" else "3"  # wave 1 got version 3 (bad); restored only by "all"
    assert live_version(aws, "use1-onebox", "us-east-1") == expected_onebox
    assert live_version(aws, "use1", "us-east-1") == "2"
    assert live_version(aws, "usw2", "us-west-2") == "2"
    versions = aws.client("lambda", "us-west-2").list_versions_by_function(FunctionName="orders-usw2")[
        "Versions"
    ]
    assert sorted(v["Version"] for v in versions) == ["$LATEST", "1", "2"]
    ledger = json.loads((store / PIPELINE / "ledger" / "use1.json").read_text())
    assert (ledger["current"]["commit"], ledger["current"]["action"]) == (good, "rollback")
    assert ledger["current"]["detail"]["version"] == "2"


def _task_instances(run) -> dict[str, object]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        session.expunge_all()
    return {ti.task_id: ti for ti in tis}


@pytest.mark.slow
def test_a_missing_alarm_fails_closed_and_restores_what_ran_before(setup, capfd):
    specs, repo, store, aws = setup
    spec = lambda_spec(repo.bare, "all")
    spec["stages"][0]["waves"][0]["alarms"] = {"rollback": ["orders-typo-errors"]}
    dag = _load(specs, spec)

    run = dag.test(run_conf={"commit": repo.commit("change")})

    assert run.state == "failed"
    states = task_states(run)
    assert (states["prod.onebox.bake"], states["prod.first-region.deploy_use1"]) == (
        "failed",
        "upstream_failed",
    )
    assert "orders-typo-errors" in "".join(capfd.readouterr())  # the error names the alarm
    # the first deploy recorded what the alias served before handsoff: the rollback restores it
    assert live_version(aws, "use1-onebox", "us-east-1") == "1"
    assert live_version(aws, "use1", "us-east-1") == "1"


@pytest.mark.slow
def test_a_blocker_holds_the_wave_until_it_clears(setup):
    specs, repo, store, aws = setup
    cloudwatch = aws.client("cloudwatch", "us-east-1")
    put_alarms(cloudwatch, ["orders-aggregate"], state="ALARM")
    spec = lambda_spec(repo.bare, "all", bakes=("1s", "1s", "1s"))
    spec["alarms"]["blockers"] = [{"name": "orders-aggregate", "region": "us-east-1"}]
    dag = _load(specs, spec)
    cleared_at: list[float] = []

    def clear() -> None:
        time.sleep(4)
        cleared_at.append(time.time())
        cloudwatch.set_alarm_state(AlarmName="orders-aggregate", StateValue="OK", StateReason="mitigated")

    threading.Thread(target=clear, daemon=True).start()
    run = dag.test(run_conf={"commit": repo.commit("change")})

    assert run.state == "success"
    tis = _task_instances(run)
    assert tis["prod.onebox.blockers"].state == "success"
    assert tis["prod.onebox.deploy_use1-onebox"].start_date.timestamp() >= cleared_at[0]
    assert live_version(aws, "usw2", "us-west-2") == "2"


@pytest.mark.slow
def test_a_blocker_past_its_timeout_fails_the_run_and_deploys_nothing(setup):
    specs, repo, store, aws = setup
    cloudwatch = aws.client("cloudwatch", "us-east-1")
    put_alarms(cloudwatch, ["orders-aggregate"], state="ALARM")
    spec = lambda_spec(repo.bare, "all")
    spec["alarms"].update(
        blockers=[{"name": "orders-aggregate", "region": "us-east-1"}], blocker_timeout="3s"
    )
    dag = _load(specs, spec)

    run = dag.test(run_conf={"commit": repo.commit("change")})

    assert run.state == "failed"
    states = task_states(run)
    assert states["prod.onebox.blockers"] == "failed"
    assert states["prod.onebox.deploy_use1-onebox"] == "upstream_failed"
    assert {states[f"rollback.prod.{w}"] for w, _, _ in WAVES} == {"skipped"}
    assert {live_version(aws, t, r) for _, t, r in WAVES} == {"1"}
    assert not (store / PIPELINE / "ledger").exists()


@pytest.mark.slow
def test_lambda_canary_carries_the_canary_weight_during_its_bake_then_all(setup):
    specs, repo, store, aws = setup
    spec = lambda_spec(repo.bare, "all", bakes=("1s", "1s", "1s"))
    spec["stages"][0]["waves"] = spec["stages"][0]["waves"][:1]
    spec["deploy"]["canary"] = {"percent": 10, "bake": "4s"}
    dag = _load(specs, spec)
    lam = aws.client("lambda", "us-east-1")
    seen: list[dict] = []

    def watch() -> None:  # sample the alias while the canary bakes
        for _ in range(600):
            alias = lam.get_alias(FunctionName="orders-use1-onebox", Name="live")
            if alias.get("RoutingConfig", {}).get("AdditionalVersionWeights"):
                seen.append(alias)
                return
            time.sleep(0.2)

    sampler = threading.Thread(target=watch, daemon=True)
    sampler.start()
    run = dag.test(run_conf={"commit": repo.commit("change")})
    sampler.join(timeout=5)

    assert run.state == "success"
    [during] = seen
    assert (during["FunctionVersion"], during["RoutingConfig"]["AdditionalVersionWeights"]) == (
        "1",
        {"2": 0.1},
    )
    after = lam.get_alias(FunctionName="orders-use1-onebox", Name="live")
    assert (after["FunctionVersion"], after.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})) == (
        "2",
        {},
    )


@pytest.mark.slow
def test_aws_unreachable_during_a_bake_fails_closed_and_the_rollback_is_retried(setup, monkeypatch):
    from support.aws_proxy import FlakyEndpoint

    specs, repo, store, aws = setup
    with FlakyEndpoint(aws.url) as endpoint:
        conn = {"conn_type": "aws", "login": "test", "password": "test"}
        conn["extra"] = {"region_name": "us-east-1", "endpoint_url": endpoint.url}
        monkeypatch.setenv("AIRFLOW_CONN_AWS_FLAKY", json.dumps(conn))
        dag = _load(specs, lambda_spec(repo.bare, "all", aws_conn_id="aws_flaky"))
        good = repo.commit("good")
        assert dag.test(run_conf={"commit": good}).state == "success"

        bad = repo.commit("bad")

        def lambda_back(method: str, path: str) -> None:
            # the rollback's Lambda calls: refused past the SDK's own retries (the task's first try
            # fails), then AWS comes back for the task's retry
            if sum("/functions/" in r for r in endpoint.refused) >= 8:
                endpoint.down = False

        endpoint.on_refused = lambda_back
        outage = _when_deployed(store, "use1-onebox", bad, lambda: setattr(endpoint, "down", True))
        run = dag.test(run_conf={"commit": bad})
        outage.join(timeout=5)

    assert run.state == "failed"
    tis = _task_instances(run)
    assert tis["prod.onebox.bake"].state == "failed"  # never promoted on an unknown alarm state
    assert tis["prod.first-region.deploy_use1"].state == "upstream_failed"
    assert sum("/functions/" not in r for r in endpoint.refused) >= 5  # alarm reads retried, then gave up
    rollback = tis["rollback.prod.onebox"]
    assert (rollback.state, rollback.try_number) == ("success", 2)  # failed once (AWS down), retried
    assert live_version(aws, "use1-onebox", "us-east-1") == "2"
    ledger = json.loads((store / PIPELINE / "ledger" / "use1-onebox.json").read_text())
    assert (ledger["current"]["commit"], ledger["current"]["action"]) == (good, "rollback")


@pytest.mark.slow
def test_no_task_log_of_a_full_run_contains_the_connection_secret(setup, monkeypatch, capfd):
    specs, repo, store, aws = setup
    secret = "hS0ff-S3cret-9f2c1e7b"
    conn = {"conn_type": "aws", "login": "AKIAHANDSOFFTEST", "password": secret}
    conn["extra"] = {"region_name": "us-east-1", "endpoint_url": aws.url}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_SECRETIVE", json.dumps(conn))
    spec = lambda_spec(repo.bare, "all", bakes=("1s", "1s", "1s"), aws_conn_id="aws_secretive")
    spec["build"]["steps"].append({"name": "env-dump", "command": "env; set"})  # a step that prints its env
    dag = _load(specs, spec)

    run = dag.test(run_conf={"commit": repo.commit("change")})

    out, err = capfd.readouterr()
    logs = (
        out
        + err
        + "".join(p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log"))
    )
    assert run.state == "success"
    assert "Deploying" in logs and "env-dump" in logs  # the task logs are really in what we searched
    assert secret not in logs


def _links(run, task_id: str) -> dict:
    """The extra-link values a task stored (XCom), by link key."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id).all()
        return {row.key: row.value for row in rows if row.key.startswith("handsoff_")}


@pytest.mark.slow
def test_extra_links_point_at_the_alarms_and_the_deployed_alias(setup):
    import json as _json

    from handsoff.links.aws import CloudWatchAlarmsLink, DeployedResourceLink

    specs, repo, store, aws = setup
    dag = _load(specs, lambda_spec(repo.bare, "all", bakes=("1s", "1s", "1s")))
    run = dag.test(run_conf={"commit": repo.commit("change")})
    assert run.state == "success"

    deployed = _links(run, "prod.onebox.deploy_use1-onebox")["handsoff_deployed"]
    watched = _links(run, "prod.onebox.bake")["handsoff_alarms"]
    deployed = _json.loads(deployed) if isinstance(deployed, str) else deployed
    watched = _json.loads(watched) if isinstance(watched, str) else watched
    assert DeployedResourceLink().format_link(**deployed) == (
        "https://console.aws.amazon.com/lambda/home?region=us-east-1#/functions/orders-use1-onebox/aliases/live"
    )
    assert CloudWatchAlarmsLink().format_link(**watched) == (
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:?search=orders-use1-onebox-errors"
    )
    assert [type(link).__name__ for link in dag.get_task("prod.onebox.bake").operator_extra_links] == [
        "CloudWatchAlarmsLink"
    ]


@pytest.mark.slow
def test_aws_unreachable_during_a_deploy_fails_it_and_nothing_is_promoted(setup, monkeypatch):
    from support.aws_proxy import FlakyEndpoint

    specs, repo, store, aws = setup
    with FlakyEndpoint(aws.url) as endpoint:
        conn = {"conn_type": "aws", "login": "test", "password": "test"}
        conn["extra"] = {"region_name": "us-east-1", "endpoint_url": endpoint.url}
        monkeypatch.setenv("AIRFLOW_CONN_AWS_FLAKY", json.dumps(conn))
        dag = _load(specs, lambda_spec(repo.bare, "all", aws_conn_id="aws_flaky"))
        good = repo.commit("good")
        assert dag.test(run_conf={"commit": good}).state == "success"

        bad = repo.commit("bad")
        manifest = store / PIPELINE / "artifacts" / bad / "manifest.json"

        def outage() -> None:  # AWS goes away once the build stored the artifact (the deploy is next)
            deadline = time.monotonic() + 120
            while not manifest.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            endpoint.down = True

        def back(method: str, path: str) -> None:  # ... and comes back after the deploy's SDK retries
            if len(endpoint.refused) >= 5:
                endpoint.down = False

        endpoint.on_refused = back
        watcher = threading.Thread(target=outage, daemon=True)
        watcher.start()
        run = dag.test(run_conf={"commit": bad})
        watcher.join(timeout=5)

    assert run.state == "failed"
    states = task_states(run)
    assert states["prod.onebox.deploy_use1-onebox"] == "failed"
    assert states["prod.onebox.bake"] == states["prod.first-region.deploy_use1"] == "upstream_failed"
    assert {live_version(aws, t, r) for _, t, r in WAVES} == {"2"}  # still the good version everywhere
    ledger = json.loads((store / PIPELINE / "ledger" / "use1-onebox.json").read_text())
    assert ledger["current"]["commit"] == good  # nothing recorded for the failed deploy
