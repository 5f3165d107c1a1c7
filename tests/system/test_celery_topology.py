"""Airflow's distributed engine without Docker: CeleryExecutor on private PostgreSQL and Redis, two workers.

The topology of docker-compose.yaml as local processes (tests/celery_cluster.py): api-server,
scheduler, dag-processor, triggerer and two Celery workers, the artifact store and ledger on S3 (a
moto server), because workers do not share a disk. The first run of greeter-app, triggered through
the REST API, spreads its test shards over both workers and waits out its bakes in the triggerer.
The second run loses a worker in the middle of a gamma deploy: the run still ends within a bound
(the lost task fails on its heartbeat timeout, the rollback runs) and no deployment is lost or done
twice. The test prints the wall times and the spread of the shards.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from handsoff.hooks.airflow_api import AirflowApi
from support.airflow import api_client
from support.celery_cluster import Cluster, MissingService
from support.repos import EXAMPLES_SPECS, make_service_repo
from support.specs import ExampleFleet

pytestmark = pytest.mark.slow

PIPELINE = "greeter-app"
BUCKET = "handsoff-scale"
WORKERS = ("worker-a", "worker-b")
#: While this file exists in the fleet folder, gamma deploys hold their task 20 s after deploying:
#: the window in which the second test kills the worker (target changed, ledger not yet written).
HOLD = "hold-gamma"
GAMMA = ("gamma-iad", "gamma-pdx")
HEARTBEAT_TIMEOUT_S = 20
RUN_TIMEOUT_S = 300
DONE = {"success", "failed", "skipped", "upstream_failed", "removed"}
TIs = dict[str, dict[str, Any]]  # "<task_id>" or "<task_id>[<map_index>]" → REST task instance


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> ExampleFleet:
    """greeter-app and its templates in a temp specs root, with an S3 store and holdable gamma deploys."""
    root = tmp_path_factory.mktemp("scale")
    specs = root / "specs"
    shutil.copytree(EXAMPLES_SPECS / "templates", specs / "templates")
    spec = json.loads((EXAMPLES_SPECS / f"{PIPELINE}.json").read_text())
    spec["artifacts"] = {"store": f"s3://{BUCKET}/handsoff"}
    hold = f'if [ -e "$GREETER_FLEET_DIR/{HOLD}" ]; then sleep 20; fi'
    gamma_deploy = {
        "type": "command",
        "deploy": f"./deploy.sh && {hold}",
        "rollback": "./rollback.sh",
        "current": "./current.sh",
    }
    spec["stages"].append({"name": "gamma", "deploy": {**gamma_deploy, "timeout": "5m"}})
    (specs / f"{PIPELINE}.json").write_text(json.dumps(spec, indent=2))
    repo = make_service_repo(root / ".demo" / "git" / "greeter.git")  # the template's source.repo
    (root / "fleet").mkdir()
    return ExampleFleet(specs, repo, root / "fleet")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, moto_server, fleet: ExampleFleet) -> Iterator[Cluster]:
    moto_server.client("s3").create_bucket(Bucket=BUCKET)
    env = {
        "HANDSOFF_SPECS_DIR": str(fleet.specs),
        "GREETER_FLEET_DIR": str(fleet.fleet),
        # a lost worker's task fails 20-30 s after its last heartbeat instead of 5 minutes
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
    try:
        with Cluster(tmp_path_factory.mktemp("airflow-celery"), env, WORKERS) as running:
            yield running
    except MissingService as err:  # a missing server is a failure, never a skip
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> AirflowApi:
    """A REST client, once greeter-app is parsed (and unpaused)."""
    client = api_client(cluster.url)
    deadline = time.monotonic() + 120
    while not client.get(f"/api/v2/dags?dag_id_pattern={PIPELINE}")["dags"]:
        errors = client.get("/api/v2/importErrors")["import_errors"]
        assert not errors, errors
        tail = cluster.procs["dag-processor"].tail()
        assert time.monotonic() < deadline, f"{PIPELINE} not parsed in 120s\n{tail}"
        time.sleep(1)
    status, body = client.patch(f"/api/v2/dags/{PIPELINE}", {"is_paused": False})
    assert status == 200, body
    return client


@dataclass
class Run:
    run_id: str
    state: str
    wall_s: float
    ended: float  # time.monotonic() when the run was seen ended
    tis: TIs
    deferred: dict[str, str]  # task → trigger classpath, for every task seen deferred


def _tis(api: AirflowApi, run_id: str) -> TIs:
    body = api.get(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances?limit=100")
    assert body["total_entries"] <= 100
    return {
        (ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti
        for ti in body["task_instances"]
    }


def _run(api: AirflowApi, run_id: str, commit: str, on_poll: Callable[[TIs], None] | None = None) -> Run:
    """Trigger a run through the REST API and follow it (every 0.5 s) until it ends; bounded."""
    started = time.monotonic()
    body = {"logical_date": None, "dag_run_id": run_id, "conf": {"commit": commit}}
    status, body = api.post(f"/api/v2/dags/{PIPELINE}/dagRuns", body)
    assert status in (200, 201), body
    deferred: dict[str, str] = {}
    while True:
        state = api.get(f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}")["state"]
        tis = _tis(api, run_id)
        for key, ti in tis.items():
            if ti["state"] == "deferred":  # the trigger row may show up a poll after the state
                deferred[key] = (ti["trigger"] or {}).get("classpath") or deferred.get(key, "")
        if state in ("success", "failed"):
            ended = time.monotonic()
            return Run(run_id, state, ended - started, ended, tis, deferred)
        if on_poll:
            on_poll(tis)
        elapsed = time.monotonic() - started
        assert elapsed < RUN_TIMEOUT_S, f"{run_id} still {state} after {elapsed:.0f}s: {_states(tis)}"
        time.sleep(0.5)


def _states(tis: TIs) -> dict[str, str | None]:
    return {key: ti["state"] for key, ti in sorted(tis.items())}


def _ledger(target: str) -> dict[str, Any]:
    from handsoff.store.ledger import Ledger
    from handsoff.store.objects import object_store

    record = Ledger(object_store(f"s3://{BUCKET}/handsoff", "aws_default"), PIPELINE).read(target)
    return json.loads(record.to_json())


def _targets(fleet: ExampleFleet) -> list[str]:
    from handsoff.spec import load_pipeline

    pipeline = load_pipeline(fleet.specs / f"{PIPELINE}.json", fleet.specs)
    return [t.name for s in pipeline.stages for w in s.waves for t in w.targets]


def test_shards_spread_over_both_workers_and_bakes_wait_in_the_triggerer(cluster, api, fleet, capsys):
    commit = fleet.repo.commit("scale: first change")

    run = _run(api, f"scale-1-{commit[:12]}", commit)

    assert run.state == "success", (_states(run.tis), cluster.procs["scheduler"].tail())
    # every task ran on one of the two workers; the test shards on both of them
    assert {ti["hostname"] for ti in run.tis.values() if ti["state"] == "success"} <= set(WORKERS)
    shards = {key: ti["hostname"] for key, ti in run.tis.items() if ".test_integration[" in key}
    assert len(shards) == 5, sorted(run.tis)
    spread = Counter(shards.values())
    assert set(spread) == set(WORKERS), shards
    # every bake was deferred to the triggerer (a DateTimeTrigger), holding no worker slot
    bakes = sorted(key for key in run.tis if key.endswith(".bake"))
    assert bakes == ["gamma.bake", "prod.first-region.bake", "prod.onebox.bake", "prod.rest.bake"]
    assert {key: run.deferred.get(key, "").rsplit(".", 1)[-1] for key in bakes} == dict.fromkeys(
        bakes, "DateTimeTrigger"
    )
    for bake in bakes:  # the triggerer's own log of each bake's trigger, beside the task's log
        logs = cluster.home / "logs" / f"dag_id={PIPELINE}" / f"run_id={run.run_id}" / f"task_id={bake}"
        fired = [p.name for p in logs.glob("attempt=*.log.trigger.*.log") if "Trigger fired" in p.read_text()]
        assert len(fired) == 1, (bake, sorted(p.name for p in logs.iterdir()))
    # each target deployed once, recorded once, by this run
    targets = _targets(fleet)
    assert sorted(fleet.deployed(commit)) == sorted(targets)
    for target in targets:
        record = _ledger(target)
        assert (record["current"]["commit"], record["current"]["run_id"]) == (commit, run.run_id)
        assert fleet.version(target) == commit

    tasks = Counter(ti["hostname"] for ti in run.tis.values() if ti["hostname"])
    with capsys.disabled():
        print(
            f"\n[celery topology] startup (postgres, redis, db migrate, 6 Airflow processes): "
            f"{cluster.startup_s:.1f}s; run {run.run_id}: {run.wall_s:.1f}s wall "
            f"(trigger to success, {len(run.tis)} task instances, 4 bakes of 10s)\n"
            f"[celery topology] test shards per worker: {dict(sorted(spread.items()))}; "
            f"all tasks per worker: {dict(sorted(tasks.items()))}"
        )


def test_a_worker_lost_mid_deploy_loses_no_deployment_and_does_none_twice(cluster, api, fleet, capsys):
    targets = _targets(fleet)
    before = {t: (_ledger(t)["current"] or {}).get("commit") for t in targets}
    commit = fleet.repo.commit("scale: second change")
    killed: dict[str, Any] = {}

    def kill_a_worker_mid_gamma(tis: TIs) -> None:
        if killed:
            return
        deployed = set(fleet.deployed(commit))
        for target in GAMMA:
            ti = tis[f"gamma.gamma.deploy_{target}"]
            if target in deployed and ti["state"] == "running" and ti["hostname"] in WORKERS:
                cluster.kill(ti["hostname"])  # the worker and its task processes, like a lost machine
                killed.update(
                    target=target, worker=ti["hostname"], at=time.monotonic(), when=datetime.now(UTC)
                )
                return

    (fleet.fleet / HOLD).touch()
    try:
        run = _run(api, f"scale-2-{commit[:12]}", commit, on_poll=kill_a_worker_mid_gamma)
    finally:
        (fleet.fleet / HOLD).unlink()

    assert killed, f"the run ended before a gamma deploy was caught running: {_states(run.tis)}"
    lost = f"gamma.gamma.deploy_{killed['target']}"
    states = _states(run.tis)
    # the run ended cleanly: nothing left running or queued; the lost task failed (no retries for a
    # deploy), the rollback plan rolled back what this run had deployed, and the watcher failed the run
    assert set(states.values()) <= DONE, states
    assert states[lost] == "failed", states
    failed_after = (datetime.fromisoformat(run.tis[lost]["end_date"]) - killed["when"]).total_seconds()
    # counted from the last heartbeat, which came up to [workers] min_heartbeat_interval (5 s) before the kill
    assert HEARTBEAT_TIMEOUT_S - 10 <= failed_after < HEARTBEAT_TIMEOUT_S + 60, failed_after
    assert run.state == "failed", states
    assert states["rollback_plan"] == "success", states
    # that failure came from the scheduler's heartbeat check, not from the task
    events = api.get(f"/api/v2/eventLogs?dag_id={PIPELINE}&run_id={run.run_id}&event=heartbeat%20timeout")
    assert [e["task_id"] for e in events["event_logs"]] == [lost], events

    # no deployment lost or done twice
    deploys = Counter(fleet.deployed(commit))
    assert max(deploys.values()) == 1, deploys
    assert deploys[killed["target"]] == 1  # the lost task changed its target before dying...
    for target in targets:
        record = _ledger(target)
        mine = [e for e in record["history"] if e["run_id"] == run.run_id]
        assert [e["action"] for e in mine].count("deploy") <= 1, (target, mine)
        deployed_ok = states.get(_deploy_task(run, target)) == "success"
        assert deploys[target] == (1 if deployed_ok or target == killed["target"] else 0), (target, deploys)
        if deployed_ok:  # ...every finished deploy is in the ledger, and was rolled back
            assert [e["action"] for e in mine] == ["deploy", "rollback"], (target, mine)
        # the fleet runs what the ledger says, which is what ran before this run
        current = (record["current"] or {}).get("commit")
        assert fleet.version(target) == current == before[target], (target, record["current"], before[target])
    lost_record = [e for e in _ledger(killed["target"])["history"] if e["run_id"] == run.run_id]
    assert [e["action"] for e in lost_record] == ["rollback"], lost_record  # ...and was put back

    tasks = Counter(ti["hostname"] for ti in run.tis.values() if ti["hostname"])
    with capsys.disabled():
        print(
            f"\n[celery topology] run {run.run_id}: killed {killed['worker']} while "
            f"deploy_{killed['target']} ran (heartbeat timeout {HEARTBEAT_TIMEOUT_S}s): the task failed "
            f"{failed_after:.1f}s after the kill, the run {run.state} {run.ended - killed['at']:.1f}s "
            f"after the kill ({run.wall_s:.1f}s after the trigger)\n"
            f"[celery topology] final states: {dict(sorted(Counter(states.values()).items()))}; "
            f"tasks per worker: {dict(sorted(tasks.items()))}"
        )


def _deploy_task(run: Run, target: str) -> str:
    [key] = [k for k in run.tis if k.endswith(f".deploy_{target}")]
    return key
