"""A run that found its change bad never promotes it: not after a clear, not after "mark success".

A real `airflow standalone` (scheduler, triggerer, API server) and the REST API a user's clicks go through;
moto for the alarm. The first wave's bake fails on its rollback alarm and the wave is rolled back; the alarm
is then OK again (the rollback worked). Clearing the failed bake, or marking it success and clearing the
next wave's deploy, must not deploy the bad commit to the next wave.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.airflow import AirflowProcess, api_client, api_env, free_port, wait_for_http, wait_until
from support.aws import put_alarms

PIPELINE = "orders-ui"
ALARM = "orders-a-errors"
DONE = {"success", "failed"}


def _spec(store: Path, fleet: Path, repo: Path) -> dict:
    target_dir = 'echo "$HANDSOFF_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"'
    return {
        "pipeline": PIPELINE,
        "source": {"repo": str(repo), "branch": "main"},
        "artifacts": {"store": store.as_uri()},
        "build": {"steps": [{"name": "compile", "command": "make build"}], "artifact": "dist/greeter.zip"},
        "deploy": {
            "type": "command",
            "deploy": f'mkdir -p "$HANDSOFF_TARGET_DIR" && {target_dir}',
            "rollback": 'rm -rf "$HANDSOFF_TARGET_DIR"',
            "current": 'cat "$HANDSOFF_TARGET_DIR/VERSION" 2>/dev/null || true',
        },
        "alarms": {"rollback": [ALARM], "poll": "1s"},
        "rollback": {"scope": "wave", "retries": 0},
        "stages": [
            {
                "name": "pre",
                "waves": [{"name": "a", "targets": [{"name": "a", "dir": str(fleet / "a")}], "bake": "2s"}],
            },
            {"name": "prod", "waves": [{"name": "p", "targets": [{"name": "p", "dir": str(fleet / "p")}]}]},
        ],
    }


def _tis(client, run_id: str) -> dict[str, dict]:
    body = client.get(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances?limit=100")
    return {ti["task_id"]: ti for ti in body["task_instances"]}


def _settled(client, run_id: str):
    run = client.get_or_none(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}")
    return run if run and run["state"] in DONE else None


def _running(client, run_id: str) -> bool:
    return client.get(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}")["state"] not in DONE


def _clear(client, run_id: str, task_id: str) -> None:
    """The UI's "Clear" with "Downstream": the task and everything after it run again."""
    body = {"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "include_downstream": True}
    status, answer = client.post(f"/api/v2/dags/{PIPELINE}/clearTaskInstances", body)
    assert status == 200, answer


@pytest.mark.slow
def test_clearing_or_marking_a_failed_bake_success_never_promotes_the_bad_commit(
    airflow_db, example_specs, tmp_path, moto_server
):
    specs, repo, _ = example_specs
    for other in specs.glob("*.json"):
        other.unlink()
    store, fleet = tmp_path / "store", tmp_path / "ui-fleet"
    fleet.mkdir()
    (specs / f"{PIPELINE}.json").write_text(json.dumps(_spec(store, fleet, repo.bare), indent=2))
    cloudwatch = moto_server.client("cloudwatch")
    put_alarms(cloudwatch, [ALARM], state="ALARM")  # the change breaks the first wave
    home = tmp_path / "airflow-home"
    home.mkdir()
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "admin"}))
    port = free_port()
    env = api_env(port, {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"})
    bad = repo.commit("a bad change")
    run_id = f"merge-{bad[:12]}"
    bake, deploy_p = "pre.a.bake", "prod.p.deploy_p"
    started = time.monotonic()

    with AirflowProcess(["standalone"], env, tmp_path / "standalone.log") as airflow:
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=120, proc=airflow)
        client = api_client(f"http://127.0.0.1:{port}")
        wait_until("DAG", lambda: client.get_or_none(f"/api/v2/dags/{PIPELINE}"), 120, airflow)
        body = {"logical_date": None, "dag_run_id": run_id, "conf": {"commit": bad}}
        assert client.post(f"/api/v2/dags/{PIPELINE}/dagRuns", body)[0] == 200
        first = wait_until("the run", lambda: _settled(client, run_id), 150, airflow)
        found = _tis(client, run_id)
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="the rollback worked")

        _clear(client, run_id, bake)  # a fresh bake would pass now
        wait_until("the cleared run", lambda: _running(client, run_id), 30, airflow)
        cleared = wait_until("the cleared run to end", lambda: _settled(client, run_id), 150, airflow)
        after_clear = _tis(client, run_id)

        path = f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/{bake}"
        assert client.patch(path, {"new_state": "success"})[0] == 200  # "Mark success"
        _clear(client, run_id, deploy_p)
        wait_until("the run again", lambda: _running(client, run_id), 30, airflow)
        marked = wait_until("the marked run to end", lambda: _settled(client, run_id), 150, airflow)
        after_mark = _tis(client, run_id)
    print(f"{time.monotonic() - started:.0f}s with Airflow up")

    assert (first["state"], found[bake]["state"], found["rollback.pre.a"]["state"]) == (
        "failed",
        "failed",
        "success",
    )
    assert found[deploy_p]["state"] == "upstream_failed"
    # cleared: the bake does not bake again, it fails at once, and the next wave never deploys
    assert cleared["state"] == "failed"
    assert (after_clear[bake]["state"], after_clear[deploy_p]["state"]) == ("failed", "upstream_failed")
    # marked success by hand: the next wave's deploy refuses, naming the verdict
    assert marked["state"] == "failed"
    assert after_mark[deploy_p]["state"] == "failed"
    assert not (fleet / "p").exists()  # prod never ran the bad commit
    assert not (fleet / "a").exists()  # and the first wave was rolled back (nothing ran there before)
    verdicts = json.loads((store / PIPELINE / "verdicts" / f"{bad}.json").read_text())["events"]
    assert (verdicts[0]["verdict"], verdicts[0]["task"], verdicts[0]["run_id"]) == ("bad", bake, run_id)
