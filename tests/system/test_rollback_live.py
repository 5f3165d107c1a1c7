"""On-demand rollback end to end: a moto-backed Lambda pipeline under `dag.test()`, and a rollback from
the real CLI while a deployment of the same pipeline runs on a real `airflow standalone`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.lambda_pipeline import PIPELINE as LAMBDA_PIPELINE
from support.lambda_pipeline import WAVES, lambda_spec, live_version
from support.runs import run_rollback, task_states


def _xcom(run, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, key=key, task_ids=task_id, dag_ids=run.dag_id)
        )
        values = [XComModel.deserialize_value(row) for row in rows]
    return values[0] if values else None


@pytest.mark.slow
def test_lambda_rollback_all_restores_every_alias_records_who_and_why_and_reports_alarms(setup):
    from handsoff.factory.loader import load_dags

    specs, repo, store, aws = setup
    (specs / f"{LAMBDA_PIPELINE}.json").write_text(
        json.dumps(lambda_spec(repo.bare, "all", bakes=("1s",) * 3))
    )
    dags = load_dags(specs)
    dag, rollback_dag = dags[LAMBDA_PIPELINE], dags[f"{LAMBDA_PIPELINE}__rollback"]
    a = repo.commit("change A")
    assert dag.test(run_conf={"commit": a}).state == "success"
    b = repo.commit("change B")
    assert dag.test(run_conf={"commit": b}).state == "success"
    assert {target: live_version(aws, target, region) for _, target, region in WAVES} == {
        "use1-onebox": "3",
        "use1": "3",
        "usw2": "3",
    }
    # the incident the on-call engineer reacts to: B's errors alarm in us-east-1
    aws.client("cloudwatch", "us-east-1").set_alarm_state(
        AlarmName="orders-use1-errors", StateValue="ALARM", StateReason="errors after B"
    )

    run = run_rollback(rollback_dag, scope="all", reason="INC-9 errors after B", requested_by="oncall")

    assert run.state == "success", task_states(run)
    got = task_states(run)
    assert got["restore"] == "success"
    assert (got["stop_deployments"], got["report"]) == ("success", "success")
    assert {target: live_version(aws, target, region) for _, target, region in WAVES} == {
        "use1-onebox": "2",
        "use1": "2",
        "usw2": "2",
    }
    for _, target, _ in WAVES:
        entry = json.loads((store / LAMBDA_PIPELINE / "ledger" / f"{target}.json").read_text())["current"]
        assert (entry["commit"], entry["action"], entry["run_id"]) == (a, "rollback", run.run_id)
        assert (entry["requested_by"], entry["reason"]) == ("oncall", "INC-9 errors after B")
        assert entry["detail"]["version"] == "2"
    report = _xcom(run, "report")
    assert set(report) == {"use1-onebox", "use1", "usw2"}
    assert {target: item["to"] for target, item in report.items()} == dict.fromkeys(report, a)
    assert report["use1"]["alarms"] == {"orders-use1-errors": "ALARM"}
    assert report["use1-onebox"]["alarms"] == {"orders-use1-onebox-errors": "OK"} or report["use1-onebox"][
        "alarms"
    ] == {"orders-use1-onebox-errors": "INSUFFICIENT_DATA"}
    assert set(report["usw2"]["alarms"]) == {"orders-usw2-errors"}
    print(f"report: {json.dumps(report)}")


# --- from the CLI, on a real `airflow standalone`, while a deployment runs -------------------------------

APP = "greeter-app"
APP_WAVES = [("pre", "alpha", ["alpha-pdx"]), ("prod", "onebox", ["onebox-iad"])]
APP_WAVES += [("prod", "first-region", ["iad"]), ("prod", "rest", ["pdx", "dub"])]
APP_TARGETS = [t for _, _, targets in APP_WAVES for t in targets]
_ACTIVE = {"running", "queued", "scheduled", "deferred", "up_for_retry", "up_for_reschedule", "restarting"}


def _app_spec(store: Path, bake: str) -> dict:
    """greeter-app, cut down to one build step and four waves; the prod waves after onebox bake `bake`."""
    return {
        "pipeline": APP,
        "source": {"repo": "../.demo/git/greeter.git", "branch": "main"},
        "artifacts": {"store": store.as_uri()},
        "build": {"steps": [{"name": "compile", "command": "make build"}], "artifact": "dist/greeter.zip"},
        "deploy": {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh", "timeout": "1m"},
        "stages": [
            {
                "name": stage,
                "waves": [
                    {
                        "name": wave,
                        "targets": [{"name": t} for t in targets],
                        **({"bake": bake} if wave in ("first-region", "rest") else {}),
                    }
                    for s, wave, targets in APP_WAVES
                    if s == stage
                ],
            }
            for stage in ("pre", "prod")
        ],
    }


def _app_tis(client, dag_id: str, run_id: str) -> dict[str, dict]:
    body = client.get_or_none(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200") or {}
    return {ti["task_id"]: ti for ti in body.get("task_instances", [])}


def _reap_group(proc, timeout: float = 30) -> None:
    """After `airflow standalone` exits, wait for the rest of its process group; SIGKILL what stays."""
    import signal

    if proc.proc is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.proc.pid, signal.SIGKILL)


def _finished(client, dag_id: str, run_id: str):
    run = client.get_or_none(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    return run if run and run["state"] in ("success", "failed") else None


@pytest.mark.slow
def test_cli_rollback_stops_the_running_deployment_then_restores_what_it_deployed(example_specs, tmp_path):
    """`airflow standalone` in a fresh home; commit A deployed everywhere (short bakes), then commit B
    triggered with 60 s bakes; while B bakes in prod.first-region, `handsoff rollback greeter-app --all`.
    """
    from support.airflow import AirflowProcess, api_client, api_env, free_port, wait_for_http, wait_until

    specs, repo, fleet = example_specs
    for other in specs.glob("*.json"):
        other.unlink()
    store = tmp_path / "store"
    spec_file = specs / f"{APP}.json"
    spec_file.write_text(json.dumps(_app_spec(store, "1s"), indent=2))
    home = tmp_path / "airflow-home"
    home.mkdir()
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "admin"}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_conn = {"conn_type": "http", "host": url, "login": "admin", "password": "admin"}
    extra = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW_CONN_HANDSOFF_AIRFLOW_API": json.dumps(api_conn),
    }
    env = api_env(port, extra)
    a = repo.commit("change A")
    b = repo.commit("change B")
    reason = "INC-12 greetings are empty after B"
    started = time.monotonic()
    timings: dict[str, float] = {}

    standalone = AirflowProcess(["standalone"], env, tmp_path / "standalone.log")
    try:
        with standalone as airflow:
            wait_for_http(f"{url}/api/v2/monitor/health", timeout=120, proc=airflow)
            client = api_client(url)
            for path in (f"/api/v2/dags/{APP}", f"/api/v2/dags/{APP}__rollback"):
                wait_until(path, lambda p=path: client.get_or_none(p), 120, airflow)
            timings["ready"] = time.monotonic() - started

            def trigger(run_id: str, commit: str) -> None:
                body = {"logical_date": None, "dag_run_id": run_id, "conf": {"commit": commit}}
                status, answer = client.post(f"/api/v2/dags/{APP}/dagRuns", body)
                assert status == 200, answer

            trigger("deploy-A", a)
            run_a = wait_until("run A done", lambda: _finished(client, APP, "deploy-A"), 150, airflow)
            assert run_a["state"] == "success", _app_tis(client, APP, "deploy-A")
            assert {
                t: (fleet / APP / t / "VERSION").read_text().strip() for t in APP_TARGETS
            } == dict.fromkeys(APP_TARGETS, a)
            timings["A deployed"] = time.monotonic() - started

            spec_file.write_text(
                json.dumps(_app_spec(store, "60s"), indent=2)
            )  # workers read it at task start
            trigger("deploy-B", b)
            bake = "prod.first-region.bake"
            wait_until(
                f"B in {bake}",
                lambda: (
                    _app_tis(client, APP, "deploy-B").get(bake, {}).get("state") in ("deferred", "running")
                ),
                120,
                airflow,
            )
            timings["B baking"] = time.monotonic() - started
            cli_env = {
                **os.environ,
                "HANDSOFF_SPECS_DIR": str(specs),
                "HANDSOFF_AIRFLOW_URL": url,
            }
            cli_env.pop("HANDSOFF_AIRFLOW_TOKEN", None)
            handsoff = str(Path(sys.executable).with_name("handsoff"))
            argv = ["rollback", APP, "--all", "--to", a[:10], "--reason", reason]
            done = subprocess.run(
                [handsoff, *argv, "--username", "admin", "--password", "admin"],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            print(f"$ handsoff {' '.join(argv)} --username admin --password ...\n{done.stdout}{done.stderr}")
            assert done.returncode == 0, done.stderr
            rollback_id = done.stdout.split(" run ")[1].split(":")[0]
            rb = wait_until(
                "rollback done", lambda: _finished(client, f"{APP}__rollback", rollback_id), 120, airflow
            )
            timings["rolled back"] = time.monotonic() - started
            rb_tis = _app_tis(client, f"{APP}__rollback", rollback_id)
            assert rb["state"] == "success", {t: ti["state"] for t, ti in rb_tis.items()}

            def b_settled():
                tis = _app_tis(client, APP, "deploy-B")
                return tis if not {ti["state"] for ti in tis.values()} & _ACTIVE else None

            run_b = client.get_or_none(f"/api/v2/dags/{APP}/dagRuns/deploy-B")
            b_tis = wait_until("no task of B active", b_settled, 30, airflow)
            report = client.get_or_none(
                f"/api/v2/dags/{APP}__rollback/dagRuns/{rollback_id}/taskInstances/report/xcomEntries/return_value",
            )
    finally:
        _reap_group(standalone)
    elapsed = time.monotonic() - started
    b_states = {t: ti["state"] for t, ti in b_tis.items()}
    print(f"timings: {json.dumps({k: round(v) for k, v in timings.items()})}; {elapsed:.0f}s with Airflow up")
    print(f"deploy-B: {run_b['state']} note={run_b.get('note')!r}\n{json.dumps(b_states, indent=1)}")
    print(f"rollback: {json.dumps({t: ti['state'] for t, ti in rb_tis.items()}, indent=1)}")
    print(f"report: {report}")

    assert run_b["state"] == "failed"
    assert run_b["note"] == f"stopped by rollback {rollback_id}: {reason}"
    for task_id in (
        "pre.alpha.deploy_alpha-pdx",
        "prod.onebox.deploy_onebox-iad",
        "prod.first-region.deploy_iad",
    ):
        assert b_states[task_id] == "success"
    assert b_states[bake] == "skipped" and b_tis[bake]["note"] == run_b["note"]
    rest = {t: s for t, s in b_states.items() if t.startswith("prod.rest.")}
    assert rest and set(rest.values()) == {"skipped"}, rest
    assert not set(b_states.values()) & _ACTIVE
    assert rb_tis["stop_deployments"]["state"] == "success"
    restored = ("iad", "onebox-iad", "alpha-pdx")
    assert report["value"] == {t: {"to": a, "alarms": "no alarms"} for t in restored}  # read once, reported
    versions = {t: (fleet / APP / t / "VERSION").read_text().strip() for t in APP_TARGETS}
    assert versions == dict.fromkeys(APP_TARGETS, a)
    for target in ("alpha-pdx", "onebox-iad", "iad"):  # what B deployed
        entry = json.loads((store / APP / "ledger" / f"{target}.json").read_text())["current"]
        assert (entry["commit"], entry["action"], entry["run_id"]) == (a, "rollback", rollback_id)
        assert (entry["requested_by"], entry["reason"]) == ("admin", reason)
    for target in ("pdx", "dub"):  # B never reached them: left on A
        entry = json.loads((store / APP / "ledger" / f"{target}.json").read_text())["current"]
        assert (entry["commit"], entry["action"], entry["run_id"]) == (a, "deploy", "deploy-A")
    log = (fleet / APP / "deploys.log").read_text().splitlines()
    assert [line.split()[1] for line in log if line.startswith("rollback ")] == [
        "iad",
        "onebox-iad",
        "alpha-pdx",
    ]
