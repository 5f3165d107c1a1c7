"""Airflow components killed mid-run (issue 8, "Faults"): the run resumes or fails cleanly; the ledger holds.

A fresh AIRFLOW_HOME (SQLite, LocalExecutor) with every component as its own process and session:
dag-processor, api-server on a free port, scheduler, triggerer. The example greeter-app pipeline (a temp
copy of the specs, bakes of 15 s, a file artifact store) is triggered through the REST API twice:

1. the triggerer is SIGKILLed (its whole session) while gamma's bake is deferred and restarted 3 s later:
   the bake's trigger is re-created from its serialized kwargs by the new triggerer (its deadline is
   absolute) and the run succeeds;
2. the scheduler is SIGKILLed while prod's onebox deploy runs (with LocalExecutor the task runs under the
   scheduler, so this is also "a worker killed during a deploy"), in the window where the target has
   changed but the ledger is not yet written (a hold file makes the deploy command sleep after deploying),
   and restarted 3 s later: the run ends within a bound, nothing left running or queued.

After each run the fleet and the ledger agree: no target deployed twice by the run (deploys.log, the
ledger's history), none changed without a record (VERSION == ledger current for every target). The test
prints what was killed when, how long recovery took and the final states.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from handsoff.hooks.airflow_api import AirflowApi
from support.airflow import AirflowProcess, airflow_bin, api_client, free_port, wait_for_http
from support.celery_cluster import kill_session
from support.repos import EXAMPLES_SPECS, make_service_repo
from support.specs import ExampleFleet

pytestmark = pytest.mark.slow

PIPELINE = "greeter-app"
BAKE = "15s"  # shorter deferrals race in Airflow 3.3
HOLD = "hold-prod"  # while this file exists in the fleet folder, prod deploys sleep 20 s after deploying
HEARTBEAT_TIMEOUT_S = 20
TRIGGERER_HEALTH_S = 15  # a dead triggerer's triggers are taken over this long after its last heartbeat
# A restarted scheduler checks heartbeats only of the tasks it queued itself: the dead scheduler's running
# tasks wait for the orphan check (default every 300 s), once that scheduler's heartbeat is this old.
ORPHAN_CHECK_S = 10
SCHEDULER_HEALTH_S = 15
RESTART_AFTER_S = 3
RUN_TIMEOUT_S = 200
DONE = {"success", "failed", "skipped", "upstream_failed", "removed"}
COMPONENTS = ("api-server", "dag-processor", "scheduler", "triggerer")
TIs = dict[str, dict[str, Any]]


def _bakes(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (BAKE if k == "bake" and isinstance(v, str) else _bakes(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_bakes(v) for v in node]
    return node


@dataclass
class Fleet(ExampleFleet):
    store: Path

    def ledger(self, target: str) -> dict[str, Any]:
        path = self.store / PIPELINE / "ledger" / f"{target}.json"
        return json.loads(path.read_text()) if path.exists() else {"current": None, "history": []}

    def targets(self) -> list[str]:
        from handsoff.spec import load_pipeline

        pipeline = load_pipeline(self.specs / f"{PIPELINE}.json", self.specs)
        return [t.name for s in pipeline.stages for w in s.waves for t in w.targets]


class Airflow:
    """The four Airflow components as separate processes (each in its own session) on one fresh home."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.logs = home, home / "process-logs"
        self.port = free_port()
        (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "admin"}))
        self.env = {
            **os.environ,
            **env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            # other test runs on this machine may hold Airflow's default log-server ports
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        self.procs: dict[str, AirflowProcess] = {}
        self.started: dict[str, int] = Counter()
        self.startup_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        migrate = subprocess.run(
            [airflow_bin(), "db", "migrate"], env=self.env, capture_output=True, text=True, timeout=300
        )
        assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-4000:]
        for name in COMPONENTS:
            self.launch(name)
        wait_for_http(f"{self.url}/api/v2/monitor/health", timeout=120, proc=self.procs["api-server"])

    def launch(self, name: str) -> None:
        args = [name, "--port", str(self.port)] if name == "api-server" else [name]
        self.started[name] += 1
        self.procs[name] = AirflowProcess(args, self.env, self.logs / f"{name}.log").__enter__()

    def kill(self, name: str) -> None:
        """SIGKILL process `name` and everything it started.

        Its whole session, not only its process group: Airflow's supervisor puts each task process in a
        group of its own, which would outlive the scheduler's (celery_cluster.kill_session).
        """
        kill_session(self.procs[name].proc.pid)
        self.procs[name].proc.wait(timeout=10)

    def alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.proc.poll() is None, f"{name} exited:\n{proc.tail()}"

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL every session (also after a failed start)."""
        for proc in self.procs.values():
            with contextlib.suppress(Exception):  # keep stopping the others
                proc.stop()
        for proc in self.procs.values():
            if proc.proc is not None:
                kill_session(proc.proc.pid)
                proc.proc.poll()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    root = tmp_path_factory.mktemp("faults")
    specs = root / "specs"
    shutil.copytree(EXAMPLES_SPECS / "templates", specs / "templates")
    for template in (specs / "templates").glob("*.json"):
        template.write_text(json.dumps(_bakes(json.loads(template.read_text())), indent=2))
    spec = _bakes(json.loads((EXAMPLES_SPECS / f"{PIPELINE}.json").read_text()))
    store = root / "store"
    spec["artifacts"] = {"store": store.as_uri()}
    hold = f'if [ -e "$GREETER_FLEET_DIR/{HOLD}" ]; then sleep 20; fi'
    prod_deploy = {
        "type": "command",
        "deploy": f"./deploy.sh && {hold}",
        "rollback": "./rollback.sh",
        "current": "./current.sh",
    }
    spec["stages"].append({"name": "prod", "deploy": {**prod_deploy, "timeout": "5m"}})
    (specs / f"{PIPELINE}.json").write_text(json.dumps(spec, indent=2))
    repo = make_service_repo(root / ".demo" / "git" / "greeter.git")  # the template's source.repo
    (root / "fleet").mkdir()
    return Fleet(specs, repo, root / "fleet", store)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Iterator[Airflow]:
    env = {
        "HANDSOFF_SPECS_DIR": str(fleet.specs),
        "GREETER_FLEET_DIR": str(fleet.fleet),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_S),
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(ORPHAN_CHECK_S),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": str(SCHEDULER_HEALTH_S),
    }
    cluster = Airflow(tmp_path_factory.mktemp("airflow-home"), env)
    started = time.monotonic()
    try:
        cluster.start()
        cluster.startup_s = time.monotonic() - started
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def api(airflow: Airflow) -> AirflowApi:
    client = api_client(airflow.url)
    deadline = time.monotonic() + 120
    while not client.get(f"/api/v2/dags?dag_id_pattern={PIPELINE}")["dags"]:
        assert not client.get("/api/v2/importErrors")["import_errors"]
        assert time.monotonic() < deadline, f"{PIPELINE} not parsed\n{airflow.procs['dag-processor'].tail()}"
        airflow.alive()
        time.sleep(1)
    status, body = client.patch(f"/api/v2/dags/{PIPELINE}", {"is_paused": False})
    assert status == 200, body
    return client


@dataclass
class Run:
    run_id: str
    state: str
    started: float
    ended: float
    tis: TIs
    seen: dict[str, set[str]] = field(default_factory=dict)  # task → every state seen while polling


def _tis(api: AirflowApi, run_id: str) -> TIs:
    status, body = api._request("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances?limit=100")
    if status != 200:  # the API server answers while the scheduler is down; SQLite may be busy
        return {}
    return {
        (ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti
        for ti in body["task_instances"]
    }


def _run(api: AirflowApi, airflow: Airflow, run_id: str, commit: str, on_poll: Callable[[TIs], None]) -> Run:
    """Trigger a run through the REST API and follow it every 0.5 s until it ends (bounded)."""
    started = time.monotonic()
    body = {"logical_date": None, "dag_run_id": run_id, "conf": {"commit": commit}}
    status, body = api.post(f"/api/v2/dags/{PIPELINE}/dagRuns", body)
    assert status in (200, 201), body
    seen: dict[str, set[str]] = {}
    while True:
        status, run = api._request("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}")
        tis = _tis(api, run_id)
        for key, ti in tis.items():
            seen.setdefault(key, set()).add(ti["state"])
        if status == 200 and run["state"] in ("success", "failed"):
            return Run(run_id, run["state"], started, time.monotonic(), _tis(api, run_id) or tis, seen)
        on_poll(tis)
        elapsed = time.monotonic() - started
        assert elapsed < RUN_TIMEOUT_S, f"{run_id} not done after {elapsed:.0f}s: {_states(tis)}"
        time.sleep(0.5)


def _states(tis: TIs) -> dict[str, str | None]:
    return {key: ti["state"] for key, ti in sorted(tis.items())}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _consistency(fleet: Fleet, run: Run, commit: str) -> tuple[dict[str, Any], list[str]]:
    """Per-target facts after `run`, and every way the fleet and the ledger disagree (empty: consistent)."""
    deploys = Counter(fleet.deployed(commit))
    facts, problems = {}, []
    for target in fleet.targets():
        record = fleet.ledger(target)
        mine = [e["action"] for e in record["history"] if e["run_id"] == run.run_id]
        current = record["current"] or {}
        version = fleet.version(target)
        facts[target] = {"deploys.log": deploys[target], "ledger": mine, "now": (version or "-")[:7]}
        if deploys[target] > 1:
            problems.append(f"{target} deployed {deploys[target]} times by {run.run_id} (deploys.log)")
        if mine.count("deploy") > 1:
            problems.append(f"{target}: {mine.count('deploy')} ledger deploys by {run.run_id}")
        # nothing changed without a record: the fleet runs exactly what the ledger says
        if version != current.get("commit"):
            problems.append(f"{target} runs {version} but its ledger says {current.get('commit')}")
        elif version == commit and current.get("run_id") != run.run_id:
            problems.append(f"{target} runs {commit[:7]}, recorded for {current.get('run_id')}")
        if mine.count("deploy") > deploys[target]:  # every recorded deploy really happened
            problems.append(f"{target}: ledger deploys {mine} but deploys.log has {deploys[target]}")
    return facts, problems


def test_triggerer_killed_during_a_bake_the_bake_completes_and_the_run_succeeds(airflow, api, fleet, capsys):
    commit = fleet.repo.commit("faults: first change")
    bake = "gamma.bake"
    killed: dict[str, Any] = {}

    def kill_triggerer_mid_bake(tis: TIs) -> None:
        ti = tis.get(bake, {})
        if "at" in killed:
            if "restarted" not in killed and time.monotonic() - killed["at"] >= RESTART_AFTER_S:
                airflow.launch("triggerer")
                killed["restarted"] = time.monotonic()
            return
        if ti.get("state") == "deferred":
            if "deferred" not in killed:
                killed["deferred"] = time.monotonic()
            elif time.monotonic() - killed["deferred"] >= 2:  # the trigger is running in the triggerer
                airflow.kill("triggerer")
                killed.update(at=time.monotonic(), when=datetime.now(UTC), trigger=ti.get("trigger"))

    run = _run(api, airflow, f"faults-1-{commit[:12]}", commit, kill_triggerer_mid_bake)

    states = _states(run.tis)
    assert "at" in killed, f"the bake was never seen deferred: {states}"
    assert "restarted" in killed, states
    assert run.state == "success", (states, airflow.procs["triggerer"].tail())
    assert set(states.values()) <= DONE, states
    deferred_at = _time(run.tis[bake]["start_date"])
    bake_end = _time(run.tis[bake]["end_date"])
    assert bake_end > killed["when"]
    # the trigger ran in both triggerers (one log per triggerer job); only the restarted one fired it
    logs = airflow.home / "logs" / f"dag_id={PIPELINE}" / f"run_id={run.run_id}" / f"task_id={bake}"
    trigger_logs = sorted(logs.glob("attempt=*.log.trigger.*.log"))
    fired = [p.name for p in trigger_logs if "Trigger fired" in p.read_text()]
    assert len(trigger_logs) == 2 and fired == [trigger_logs[-1].name], [p.name for p in trigger_logs]
    resumed = next(
        _time(json.loads(line)["timestamp"])
        for line in trigger_logs[-1].read_text().splitlines()
        if line.startswith("{")
    )
    assert sorted(fleet.deployed(commit)) == sorted(fleet.targets())
    facts, problems = _consistency(fleet, run, commit)
    assert not problems, problems
    for target in fleet.targets():
        assert fleet.ledger(target)["current"]["run_id"] == run.run_id
    with capsys.disabled():
        print(
            f"\n[faults] Airflow up (migrate, 4 processes) in {airflow.startup_s:.1f}s\n"
            f"[faults] run {run.run_id}: triggerer SIGKILLed {killed['at'] - run.started:.1f}s after the "
            f"trigger, "
            f"{killed['at'] - killed['deferred'] + 0.5:.1f}s into the deferral of {bake} "
            f"(bake {BAKE}, started {deferred_at:%H:%M:%S}, killed {killed['when']:%H:%M:%S}), restarted "
            f"{killed['restarted'] - killed['at']:.1f}s later; the bake ended {bake_end:%H:%M:%S} "
            f"({(bake_end - killed['when']).total_seconds():.1f}s after the kill, "
            f"{(bake_end - deferred_at).total_seconds():.1f}s after it started); the restarted triggerer "
            f"resumed the trigger at {resumed:%H:%M:%S} ({(resumed - killed['when']).total_seconds():.1f}s "
            f"after the kill; logs {[p.name.split('.log.')[1] for p in trigger_logs]}, fired in {fired}); "
            f"run {run.state} {run.ended - run.started:.1f}s after the trigger\n"
            f"[faults] final states: {dict(sorted(Counter(states.values()).items()))}; per target: {facts}"
        )


def test_scheduler_killed_during_a_prod_deploy_the_run_ends_cleanly(airflow, api, fleet, capsys):
    targets = fleet.targets()
    before = {t: (fleet.ledger(t)["current"] or {}).get("commit") for t in targets}
    commit = fleet.repo.commit("faults: second change")
    lost = "prod.onebox.deploy_onebox-iad"
    killed: dict[str, Any] = {}

    def kill_scheduler_mid_deploy(tis: TIs) -> None:
        if "at" in killed:
            if "restarted" not in killed and time.monotonic() - killed["at"] >= RESTART_AFTER_S:
                airflow.launch("scheduler")
                killed["restarted"] = time.monotonic()
            return
        ti = tis.get(lost, {})
        if ti.get("state") == "running" and "onebox-iad" in fleet.deployed(commit):
            airflow.kill("scheduler")  # LocalExecutor: the task's worker process dies with it
            (fleet.fleet / HOLD).unlink()  # a new try of the deploy would not wait
            killed.update(at=time.monotonic(), when=datetime.now(UTC), try_number=ti["try_number"])

    (fleet.fleet / HOLD).touch()
    try:
        run = _run(api, airflow, f"faults-2-{commit[:12]}", commit, kill_scheduler_mid_deploy)
    finally:
        (fleet.fleet / HOLD).unlink(missing_ok=True)

    states = _states(run.tis)
    assert "at" in killed, f"the run ended before {lost} was caught running: {states}"
    lost_ti = run.tis[lost]
    lost_end = _time(lost_ti["end_date"])
    _, events = api._request("GET", f"/api/v2/eventLogs?dag_id={PIPELINE}&run_id={run.run_id}&limit=100")
    kinds = Counter(e["event"] for e in (events or {}).get("event_logs", []) if e.get("task_id") == lost)
    scheduler_log = airflow.procs["scheduler"].log.read_text(errors="replace")
    reset = [line[:32] for line in scheduler_log.splitlines() if "Reset the following" in line]
    facts, problems = _consistency(fleet, run, commit)
    with capsys.disabled():
        print(
            f"\n[faults] run {run.run_id}: scheduler SIGKILLed (with its LocalExecutor worker) "
            f"{killed['at'] - run.started:.1f}s after the trigger, at {killed['when']:%H:%M:%S}, while "
            f"{lost} (try {killed['try_number']}) was running after deploy.sh had changed onebox-iad, before "
            f"the ledger write; restarted {killed['restarted'] - killed['at']:.1f}s later (heartbeat timeout "
            f"{HEARTBEAT_TIMEOUT_S}s, orphan check every {ORPHAN_CHECK_S}s, "
            f"scheduler health {SCHEDULER_HEALTH_S}s)\n"
            f"[faults] {lost}: {lost_ti['state']} (try {lost_ti['try_number']}) at "
            f"{lost_end and f'{lost_end:%H:%M:%S}'} = "
            f"{lost_end and round((lost_end - killed['when']).total_seconds(), 1)}s after the kill; "
            f"states seen {sorted(map(str, run.seen.get(lost, ())))}; its events {dict(kinds)}; "
            f"orphans reset by the new scheduler at {reset}\n"
            f"[faults] run {run.state} {run.ended - killed['at']:.1f}s after the kill "
            f"({run.ended - run.started:.1f}s after the trigger); final states: "
            f"{dict(sorted(Counter(states.values()).items()))}\n"
            f"[faults] per target: {facts}\n[faults] not success: "
            f"{ {k: v for k, v in states.items() if v != 'success'} }\n[faults] inconsistencies: {problems}"
        )
    # ended cleanly: nothing left running, queued or deferred
    assert set(states.values()) <= DONE, states
    if run.state == "failed":  # the lost task failed, the rollback put back everything this run changed
        assert states[lost] == "failed", states
        assert states["rollback_plan"] == "success", states
        for target in targets:
            assert fleet.version(target) == before[target], (target, fleet.version(target), before[target])
    else:
        assert states[lost] == "success", states
    assert not problems, problems
