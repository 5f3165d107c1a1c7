"""Human approval in whole runs: `dag.test()` plays the run on the main thread while a real api-server
(`airflow api-server`) sharing the SQLite metadata DB takes the answers over the REST API, as approvers would.

Users (SimpleAuthManager, all with the admin role): admin, alice, bob, mallory. Only the assigned approvers
may answer; an admin who is not assigned is refused like anyone else. dag.test() keeps a run whose task
waits for input (AWAITING_INPUT) alive until an answer arrives from outside. Timeouts are the scheduler's
job (its AWAITING_INPUT timeout sweep); no scheduler runs here, so the test runs that sweep itself.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.airflow import AirflowProcess, api_client, api_env, free_port, wait_for_http

PIPELINE = "greeter-approved"
USERS = ("admin", "alice", "bob", "mallory")
COMMIT_URL = "https://git.example.com/greeter/commit/${commit}"


def _spec(store: Path, stage_approval: dict, wave_approval: dict | None = None) -> dict:
    rest: dict = {"name": "rest", "targets": [{"name": "pdx"}, {"name": "dub"}]}
    if wave_approval:
        rest["approval"] = wave_approval
    return {
        "pipeline": PIPELINE,
        "source": {"repo": "../.demo/git/greeter.git", "branch": "main", "commit_url": COMMIT_URL},
        "artifacts": {"store": store.as_uri()},
        "build": {
            "steps": [{"name": "package", "command": "make config"}],
            "artifact": "dist/greeter-config.tar.gz",
        },
        "deploy": {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh", "timeout": "1m"},
        "stages": [
            {"name": "beta", "waves": [{"name": "beta", "targets": [{"name": "beta"}]}]},
            {
                "name": "prod",
                "approval": stage_approval,
                "waves": [{"name": "onebox", "targets": [{"name": "onebox-iad"}]}, rest],
            },
        ],
    }


@pytest.fixture(scope="module")
def api(airflow_db, tmp_path_factory) -> Iterator[str]:
    """An api-server on the session's metadata DB with the four users; its URL."""
    port = free_port()
    env = api_env(port, {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:admin" for u in USERS)})
    passwords = airflow_db / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({user: user for user in USERS}))
    log = tmp_path_factory.mktemp("approval-api") / "api-server.log"
    with AirflowProcess(["api-server", "--port", str(port)], env, log) as server:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/api/v2/monitor/health", timeout=120, proc=server)
        yield url
    passwords.write_text(json.dumps({"admin": "admin"}))


class Approvers:
    """The REST API as each user sees it."""

    def __init__(self, url: str) -> None:
        self.clients = {user: api_client(url, user, user) for user in USERS}

    def running_run(self) -> str | None:
        status, body = self.clients["admin"]._request("GET", f"/api/v2/dags/{PIPELINE}/dagRuns?state=running")
        runs = body.get("dag_runs", []) if status == 200 else []
        return runs[0]["dag_run_id"] if runs else None

    def path(self, run_id: str, task_id: str) -> str:
        return f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"

    def wait_awaiting(self, task_id: str, timeout: float = 90) -> tuple[str, dict]:
        """Wait until `task_id` waits for input; (run id, its HITL detail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run_id = self.running_run()
            if run_id:
                status, ti = self.clients["admin"]._request(
                    "GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/{task_id}"
                )
                if status == 200 and ti["state"] == "awaiting_input":
                    return run_id, self.clients["admin"].get(self.path(run_id, task_id))
            time.sleep(0.5)
        raise AssertionError(f"{task_id} never waited for input")

    def answer(self, user: str, run_id: str, task_id: str, option: str) -> tuple[int, dict]:
        return self.clients[user].patch(self.path(run_id, task_id), {"chosen_options": [option]})


def _play(dag, commit: str, respond: Callable[[], None]):
    """Run the DAG with dag.test() while `respond` answers from another thread; re-raise its failure."""
    errors: list[str] = []

    def responder() -> None:
        try:
            respond()
        except BaseException:
            errors.append(traceback.format_exc())

    thread = threading.Thread(target=responder, daemon=True)
    thread.start()
    run = dag.test(run_conf={"commit": commit})
    thread.join(timeout=30)
    assert not errors, errors[0]
    return run


def _load(specs: Path, spec: dict):
    from handsoff.factory.loader import load_dags

    (specs / f"{PIPELINE}.json").write_text(json.dumps(spec, indent=2))
    return load_dags(specs)[PIPELINE]


def _states(run) -> dict[str, str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        return {ti.task_id: ti.state for ti in tis}


def _links(run, task_id: str) -> dict:
    """The extra-link values a task stored (XCom), by link key."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id).all()
        values = {row.key: row.value for row in rows if row.key.startswith("handsoff_")}
    return {key: json.loads(value) if isinstance(value, str) else value for key, value in values.items()}


def _deployed(fleet: Path) -> list[str]:
    log = fleet / PIPELINE / "deploys.log"
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("deploy ")]


@pytest.mark.slow
def test_only_assigned_approvers_answer_approve_goes_on_reject_fails_the_run(
    api, example_specs, tmp_path, capfd
):
    specs, repo, fleet = example_specs
    store = tmp_path / "store"
    stage = {"approvers": ["alice", "bob"], "instructions": "Check the greeting on beta", "timeout": "1h"}
    dag = _load(specs, _spec(store, stage, {"approvers": ["bob"]}))
    commit = repo.commit("change to approve")
    users = Approvers(api)
    seen: dict[str, object] = {}

    def respond() -> None:
        run_id, detail = users.wait_awaiting("prod.approval")
        seen["detail"] = detail
        seen["mallory"] = users.answer("mallory", run_id, "prod.approval", "Approve")
        seen["admin"] = users.answer("admin", run_id, "prod.approval", "Approve")
        seen["alice"] = users.answer("alice", run_id, "prod.approval", "Approve")
        seen["again"] = users.answer("bob", run_id, "prod.approval", "Reject")
        run_id, _ = users.wait_awaiting("prod.rest.approval")
        seen["alice-on-wave"] = users.answer("alice", run_id, "prod.rest.approval", "Approve")
        seen["bob"] = users.answer("bob", run_id, "prod.rest.approval", "Reject")

    run = _play(dag, commit, respond)

    detail = seen["detail"]
    assert detail["subject"] == f"{PIPELINE}: approve stage prod for commit {commit[:12]}"
    assert detail["body"].startswith("Check the greeting on beta\n")
    assert f"`{commit[:12]}`" in detail["body"] and "- `pdx` (command)" in detail["body"]
    assert [u["id"] for u in detail["assigned_users"]] == ["alice", "bob"]
    assert detail["options"] == ["Approve", "Reject"]
    for refused in ("mallory", "admin", "alice-on-wave"):
        status, body = seen[refused]
        assert status == 403, (refused, body)
        assert "is not a respondent for the task" in body["detail"]
    assert seen["alice"][0] == 200 and seen["alice"][1]["responded_by"]["id"] == "alice"
    assert seen["again"][0] == 409  # answered once, by alice
    assert seen["bob"][0] == 200

    states = _states(run)
    assert run.state == "failed"
    assert states["prod.approval"] == "success"
    assert states["prod.onebox.deploy_onebox-iad"] == "success"
    assert states["prod.rest.approval"] == "failed"
    assert states["prod.rest.deploy_pdx"] == states["prod.rest.deploy_dub"] == "upstream_failed"
    assert {states[t] for t in states if t.startswith("rollback.")} == {"skipped"}  # nothing rolled back
    assert states["outcome"] == "failed"
    assert _deployed(fleet) == ["beta", "onebox-iad"]
    ledger = json.loads((store / PIPELINE / "ledger" / "onebox-iad.json").read_text())
    [approved] = ledger["current"]["detail"]["approved"]  # the ledger says who approved what it runs
    assert (approved["where"], approved["by"]) == ("stage prod", "alice")
    out, err = capfd.readouterr()
    assert "wave prod.rest rejected by bob; wave prod.rest was not deployed" in out + err
    assert "the deployment failed: prod.rest.approval" in out + err

    # the source and build tasks stored their links' values: the commit page, the stored artifact
    from handsoff.links.source import ArtifactLink, CommitLink

    commit_link = _links(run, "source")["handsoff_commit"]
    assert CommitLink().format_link(**commit_link) == f"https://git.example.com/greeter/commit/{commit}"
    artifact = store / PIPELINE / "artifacts" / commit / "greeter-config.tar.gz"
    assert ArtifactLink().format_link(**_links(run, "build")["handsoff_artifact"]) == artifact.as_uri()
    assert artifact.is_file()


@pytest.mark.slow
def test_marking_the_approval_success_by_hand_deploys_nothing_behind_it(api, example_specs, tmp_path, capfd):
    specs, repo, fleet = example_specs
    store = tmp_path / "store"
    dag = _load(specs, _spec(store, {"approvers": ["alice", "bob"], "timeout": "1h"}))
    commit = repo.commit("change nobody approved")
    users = Approvers(api)
    seen: dict[str, object] = {}

    def respond() -> None:  # mallory may edit task instances, so she "marks success" instead of answering
        run_id, _ = users.wait_awaiting("prod.approval")
        path = f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/prod.approval"
        seen["patch"] = users.clients["mallory"].patch(path, {"new_state": "success"})

    run = _play(dag, commit, respond)

    assert seen["patch"][0] == 200  # Airflow lets her change the state; the approval is not in it
    states = _states(run)
    assert run.state == "failed"
    assert states["prod.approval"] == "success"
    assert states["prod.onebox.deploy_onebox-iad"] == "failed"
    assert _deployed(fleet) == ["beta"]  # prod untouched
    assert not (store / PIPELINE / "ledger" / "onebox-iad.json").exists()
    out, err = capfd.readouterr()
    assert "onebox-iad not deployed: no approval of stage prod by alice or bob is recorded" in out + err


@pytest.mark.slow
def test_an_unanswered_approval_times_out_and_fails_the_run(api, example_specs, tmp_path, capfd):
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    specs, repo, fleet = example_specs
    store = tmp_path / "store"
    dag = _load(specs, _spec(store, {"approvers": ["alice"], "timeout": "3s"}))
    commit = repo.commit("change nobody approves")
    users = Approvers(api)
    seen: dict[str, object] = {}

    def respond() -> None:
        run_id, detail = users.wait_awaiting("prod.approval")
        seen["mallory"] = users.answer("mallory", run_id, "prod.approval", "Approve")
        time.sleep(3.5)  # past the response deadline: what the scheduler's sweep resolves
        SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()

    run = _play(dag, commit, respond)

    assert seen["mallory"][0] == 403
    states = _states(run)
    assert run.state == "failed"
    assert states["prod.approval"] == "failed"
    assert states["prod.onebox.deploy_onebox-iad"] == "upstream_failed"
    assert {states[t] for t in states if t.startswith("rollback.")} == {"skipped"}
    assert _deployed(fleet) == ["beta"]
    out, err = capfd.readouterr()
    assert (
        "approval of stage prod timed out: no answer from alice within 3s; stage prod was not deployed"
        in (out + err)
    )
