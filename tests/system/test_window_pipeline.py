"""Deployment windows and execution modes in whole runs under `dag.test()`: real Airflow (SQLite), real git
repository, the example service's deploy script writing the fleet's deploys.log.

A window opens at a minute boundary (local times are HH:MM), so the gate test waits for the next one at
least 8 s away (8-68 s); the override run goes first, against a window closed for a day.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.airflow import AirflowProcess, api_client, api_env, free_port, wait_for_http, wait_until

PIPELINE = "greeter-gated"


def _spec(store: Path, mode: str, window: dict | None = None) -> dict:
    """Build, then stage prod: waves onebox (one target) and rest (two), gated by `window` when given."""
    prod: dict = {
        "name": "prod",
        "waves": [
            {"name": "onebox", "targets": [{"name": "onebox-iad"}]},
            {"name": "rest", "targets": [{"name": "pdx"}, {"name": "dub"}]},
        ],
    }
    spec: dict = {
        "pipeline": PIPELINE,
        "source": {"repo": "../.demo/git/greeter.git", "branch": "main"},
        "artifacts": {"store": store.as_uri()},
        "build": {
            "steps": [{"name": "package", "command": "make config"}],
            "artifact": "dist/greeter-config.tar.gz",
        },
        "deploy": {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh", "timeout": "1m"},
        "execution": {"mode": mode},
        "stages": [prod],
    }
    if window is not None:
        spec["windows"] = {"test-window": window}
        prod["window"] = "test-window"
    return spec


def _load(specs: Path, spec: dict):
    from handsoff.factory.loader import load_dags

    (specs / f"{PIPELINE}.json").write_text(json.dumps(spec, indent=2))
    return load_dags(specs)[PIPELINE]


def _task_instances(run) -> dict[str, object]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        session.expunge_all()
    return {ti.task_id: ti for ti in tis}


def _xcom(run, task_id: str, key: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, key=key, task_ids=task_id, dag_ids=run.dag_id)
        )
        values = [XComModel.deserialize_value(row) for row in rows]
    return values[0] if values else None


def _deploys(fleet: Path) -> list[tuple[str, str]]:
    """(target, commit) of every deploy, in order, from the example fleet's deploys.log."""
    log = fleet / PIPELINE / "deploys.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(line.split()[1], line.split()[2]) for line in lines if line.startswith("deploy ")]


def _ledger(store: Path, target: str) -> dict:
    return json.loads((store / PIPELINE / "ledger" / f"{target}.json").read_text())


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _closed_until(now: datetime, opens: datetime) -> dict:
    """A UTC window closed from a day before `now` until `opens` (a minute boundary), then open."""
    return {
        "timezone": "UTC",
        "deny": [{"from": _minute(now - timedelta(days=1)), "to": _minute(opens), "reason": "test freeze"}],
    }


@pytest.mark.slow
def test_gate_waits_for_the_window_and_an_override_passes_at_once(airflow_db, example_specs, tmp_path):
    specs, repo, fleet = example_specs
    store = tmp_path / "store"
    now = datetime.now(UTC)
    dag = _load(specs, _spec(store, "queued", _closed_until(now, now + timedelta(days=1))))
    hotfix = repo.commit("hotfix")

    urgent = dag.test(run_conf={"commit": hotfix, "override_window": "INC-42: fix the broken greeting now"})

    assert urgent.state == "success"
    for gate in ("prod.onebox.window", "prod.rest.window"):
        record = _xcom(urgent, gate, "window_override")
        assert (record["window"], record["reason"]) == ("test-window", "INC-42: fix the broken greeting now")
        assert record["state"].startswith("closed (test freeze) until ")
    assert _deploys(fleet)[0] == ("onebox-iad", hotfix)  # waves in order
    assert sorted(_deploys(fleet)) == sorted([("onebox-iad", hotfix), ("pdx", hotfix), ("dub", hotfix)])

    # Closed until the first minute boundary at least 8 s away: the run reaches its gate before that.
    now = datetime.now(UTC)
    opens = (now + timedelta(seconds=8 + 59)).replace(second=0, microsecond=0)
    dag = _load(specs, _spec(store, "queued", _closed_until(now, opens)))
    change = repo.commit("ordinary change")

    run = dag.test(run_conf={"commit": change})

    assert run.state == "success"
    tis = _task_instances(run)
    gate = tis["prod.onebox.window"]
    assert gate.start_date < opens <= gate.end_date  # reached the gate while closed, passed once open
    deploys = [ti for task_id, ti in tis.items() if ".deploy_" in task_id]
    assert len(deploys) == 3
    assert all(ti.state == "success" and ti.start_date >= opens for ti in deploys)
    assert _xcom(run, "prod.onebox.window", "window_override") is None
    assert [commit for _, commit in _deploys(fleet)] == [hotfix] * 3 + [change] * 3
    assert _ledger(store, "dub")["current"]["commit"] == change


def _sync_to_db() -> None:
    """Write the DAGs of the configured bundle to the metadata DB (what dag.test() does first)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)


def _queue_run(commit: str, at: datetime, sync: bool = True):
    """A run waiting in Airflow's queue, as the REST API creates it; its id is what dag.test(logical_date=at)
    gives the run it creates, so that dag.test can later play this very run."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    if sync:
        _sync_to_db()
    return trigger_dag(
        PIPELINE,
        run_id=f"manual__{at.isoformat()}",
        logical_date=at,
        run_after=at,
        conf={"commit": commit},
        triggered_by=DagRunTriggeredByType.TEST,
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["superseded", "queued"])
def test_two_waiting_runs_superseded_or_queued(airflow_db, example_specs, tmp_path, capfd, mode):
    specs, repo, fleet = example_specs
    store = tmp_path / "store"
    dag = _load(specs, _spec(store, mode))
    first, second = repo.commit("first change"), repo.commit("second change")
    # run 1 (first) starts while run 2 (second), queued after it, waits
    later = datetime.now(UTC).replace(microsecond=0)
    waiting = _queue_run(second, later)
    assert waiting.state == "queued"

    run1 = dag.test(run_conf={"commit": first}, run_after=later - timedelta(minutes=1))
    run2 = dag.test(logical_date=later, run_after=later, run_conf={"commit": second})

    assert run2.run_id == waiting.run_id
    assert (run1.state, run2.state) == ("success", "success")
    states1 = {task_id: ti.state for task_id, ti in _task_instances(run1).items()}
    states2 = {task_id: ti.state for task_id, ti in _task_instances(run2).items()}
    assert "failed" not in states1.values() and "failed" not in states2.values()
    targets = ["onebox-iad", "pdx", "dub"]
    if mode == "superseded":
        # run 1 stops before building: every task skipped, the message names run 2 and its commit
        message = f"superseded by {waiting.run_id} (commit {second[:12]}), a newer run waiting to deploy"
        assert states1["source"] == "skipped"
        assert {s for t, s in states1.items() if t != "rollback_plan"} == {"skipped"}
        assert _xcom(run1, "source", "superseded_by") == {
            "run_id": waiting.run_id,
            "message": f"{message}; this run stops at source, before building",
        }
        out, err = capfd.readouterr()
        assert message in out + err  # the source task's log says why
        assert [commit for _, commit in _deploys(fleet)] == [second] * 3
        assert [target for target, _ in _deploys(fleet)][0] == "onebox-iad"
        for target in targets:
            record = _ledger(store, target)
            assert (record["current"]["commit"], record["current"]["run_id"]) == (second, run2.run_id)
            assert record["previous"] is None  # the first change never deployed on its own
    else:
        assert _xcom(run1, "source", "superseded_by") is None
        assert [commit for _, commit in _deploys(fleet)] == [first] * 3 + [second] * 3  # merge order
        assert [target for target, _ in _deploys(fleet)][::3] == ["onebox-iad", "onebox-iad"]
        for target in targets:
            record = _ledger(store, target)
            assert (record["current"]["commit"], record["previous"]["commit"]) == (second, first)


@pytest.mark.slow
def test_a_run_waiting_at_its_gate_gives_way_to_a_newer_one(airflow_db, example_specs, tmp_path):
    specs, repo, fleet = example_specs
    store = tmp_path / "store"
    now = datetime.now(UTC)
    opens = (now + timedelta(seconds=12 + 59)).replace(second=0, microsecond=0)
    dag = _load(specs, _spec(store, "superseded", _closed_until(now, opens)))
    first, second = repo.commit("first change"), repo.commit("second change")
    later = (opens - timedelta(seconds=4)).replace(microsecond=0)
    queued = []
    # while run 1 waits at its gate, run 2 is queued behind it (as a merge would trigger it)
    timer = threading.Timer(
        (later - now).total_seconds(), lambda: queued.append(_queue_run(second, later, False))
    )
    timer.start()
    try:
        run1 = dag.test(run_conf={"commit": first})
    finally:
        timer.cancel()
    [waiting] = queued
    run2 = dag.test(logical_date=later, run_after=later, run_conf={"commit": second})

    assert (run1.state, run2.state, run2.run_id) == ("success", "success", waiting.run_id)
    tis1 = _task_instances(run1)
    gate = tis1["prod.onebox.window"]
    assert gate.state == "skipped" and gate.start_date < later < opens <= gate.end_date  # gave way on waking
    record = _xcom(run1, "prod.onebox.window", "superseded_by")
    assert record["run_id"] == waiting.run_id
    assert record["message"].startswith(
        f"superseded by {waiting.run_id} (commit {second[:12]}), a newer run waiting to deploy; "
        "this run stops at prod.onebox.window (window test-window open"
    )
    assert {ti.state for task_id, ti in tis1.items() if ".deploy_" in task_id} == {"skipped"}
    assert "failed" not in {ti.state for ti in tis1.values()}
    assert [commit for _, commit in _deploys(fleet)] == [second] * 3  # only the newest commit went out


# --- on a real scheduler and triggerer ------------------------------------------------------------------


def _tis(client, run_id: str) -> dict[str, dict]:
    body = client.get_or_none(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances?limit=100") or {}
    return {ti["task_id"]: ti for ti in body.get("task_instances", [])}


def _runs(client) -> dict[str, dict]:
    body = client.get_or_none(f"/api/v2/dags/{PIPELINE}/dagRuns?limit=50") or {}
    return {run["dag_run_id"]: run for run in body.get("dag_runs", [])}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.slow
def test_real_scheduler_run_waits_deferred_then_deploys_and_the_scheduled_run_skips(example_specs, tmp_path):
    """`airflow standalone` (scheduler, triggerer, dag processor, API server, LocalExecutor) in a fresh home.

    A run triggered through the REST API while the window is closed waits deferred at its gate and deploys
    once the window opens. The timetable starts a run for the opening (queued mode: after the first run),
    which finds the head already deployed and ends skipped, the run successful.
    Airflow starts with the window closed for a day; once it is up the spec moves the opening to the first
    minute boundary at least 25 s away (workers read the spec when a task starts; the DAG processor
    re-parses it every 5 s), so a slow start cannot make the run miss the closed window. The run reaches its
    gate ~11 s after the trigger, so it waits at least ~14 s (shorter deferrals can race in Airflow 3.3).
    """
    specs, repo, fleet = example_specs
    for other in ("greeter-app.json", "greeter-config.json"):
        (specs / other).unlink()
    store = tmp_path / "store"
    home = tmp_path / "airflow-home"
    home.mkdir()
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "admin"}))
    port = free_port()
    extra = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
    }
    env = api_env(port, extra)

    def write_spec(opens: datetime) -> None:
        spec = _spec(store, "queued", _closed_until(datetime.now(UTC), opens))
        spec["schedule"] = {"window": "test-window"}
        (specs / f"{PIPELINE}.json").write_text(json.dumps(spec, indent=2))

    write_spec(datetime.now(UTC) + timedelta(days=1))
    change = repo.commit("change merged while the window is closed")
    started = time.monotonic()

    with AirflowProcess(["standalone"], env, tmp_path / "standalone.log") as airflow:
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=120, proc=airflow)
        client = api_client(f"http://127.0.0.1:{port}")
        wait_until("DAG", lambda: client.get_or_none(f"/api/v2/dags/{PIPELINE}"), 120, airflow)
        ready = time.monotonic() - started
        opens = (datetime.now(UTC) + timedelta(seconds=25 + 59)).replace(second=0, microsecond=0)
        write_spec(opens)
        run_id = f"merge-{change[:12]}"
        status, body = client.post(
            f"/api/v2/dags/{PIPELINE}/dagRuns",
            {"logical_date": None, "dag_run_id": run_id, "conf": {"commit": change}},
        )
        assert status == 200, body
        gate = "prod.onebox.window"
        wait_until(
            "deferred gate",
            lambda: _tis(client, run_id).get(gate, {}).get("state") == "deferred",
            60,
            airflow,
        )
        deferred_at = datetime.now(UTC)

        def both_done() -> dict | None:
            runs = _runs(client)
            finished = len(runs) == 2 and all(run["state"] in ("success", "failed") for run in runs.values())
            return runs if finished else None

        done = wait_until("both runs done", both_done, opens.timestamp() - time.time() + 90, airflow)
        manual = done[run_id]
        scheduled = next(run for run in done.values() if run["run_type"] == "scheduled")
        manual_tis, scheduled_tis = _tis(client, run_id), _tis(client, scheduled["dag_run_id"])
    elapsed = time.monotonic() - started

    assert deferred_at < opens  # the run waited deferred while the window was closed
    assert manual["state"] == "success", manual_tis
    assert _time(manual_tis[gate]["end_date"]) >= opens
    deploys = [ti for task_id, ti in manual_tis.items() if ".deploy_" in task_id]
    assert len(deploys) == 3
    assert all(ti["state"] == "success" and _time(ti["start_date"]) >= opens for ti in deploys)
    assert sorted(_deploys(fleet)) == sorted((target, change) for target in ("onebox-iad", "pdx", "dub"))
    assert _ledger(store, "dub")["current"]["run_id"] == run_id
    # the opening's scheduled run: nothing left to deploy, so skipped, never failed
    assert _time(scheduled["run_after"]) == opens
    assert scheduled["state"] == "success", scheduled_tis
    assert scheduled_tis["source"]["state"] == "skipped"
    assert scheduled_tis["prod.onebox.deploy_onebox-iad"]["state"] == "skipped"
    assert "failed" not in {ti["state"] for ti in scheduled_tis.values()}
    print(f"airflow ready after {ready:.0f}s; opened at {opens:%H:%M:%S}; {elapsed:.0f}s with Airflow up")
