"""stop_deployments on its own: what it skips, what it lets finish, when it is done.

The REST API is an in-memory stand-in holding task instance states (the real API server is in
tests/system/test_rollback_live.py); the decisions are what this test checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from airflow.sdk.exceptions import AirflowFailException
from handsoff.hooks.airflow_api import AirflowApiError
from handsoff.sensors.stop_deployments import StopDeploymentsSensor
from handsoff.store.lease import PipelineLease
from handsoff.store.objects import object_store
from support.context import TaskInstanceStandIn, task_context

DEPLOYS = r"(.+\.)?deploy_[^.]+"
ROLLBACKS = r"rollback_plan|rollback\..+|outcome"


@dataclass
class RunsStandIn:
    """The deployment DAG's runs as the REST API shows them; records what the sensor changes."""

    runs: dict[str, str]  # run id → state
    tasks: dict[str, dict[str, str | None]]  # run id → task id → state
    notes: dict[str, str] = field(default_factory=dict)
    fail_with: Exception | None = None

    def dag_runs(self, dag_id: str, states: list[str]) -> list[dict]:
        if self.fail_with:
            raise self.fail_with
        return [{"dag_run_id": r, "state": s} for r, s in self.runs.items() if s in states]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return [{"task_id": t, "state": s, "map_index": -1} for t, s in self.tasks[run_id].items()]

    def set_task_instance_state(self, dag_id, run_id, task_id, map_index, state, note) -> None:
        self.tasks[run_id][task_id] = state

    def update_dag_run(self, dag_id, run_id, state, note) -> None:
        self.runs[run_id] = state
        self.notes[run_id] = note


@pytest.fixture
def store(tmp_path) -> str:
    return (tmp_path / "store").as_uri()


def _sensor(store: str) -> StopDeploymentsSensor:
    return StopDeploymentsSensor(
        task_id="stop_deployments",
        pipeline="app",
        deploy_tasks=DEPLOYS,
        protected_tasks=ROLLBACKS,
        note="stopped by rollback r9: INC",
        reason="INC",
        store=store,
    )


def _poke(monkeypatch, store: str, api: RunsStandIn, active: int) -> bool:
    monkeypatch.setattr("handsoff.sensors.stop_deployments.api_from_connection", lambda conn_id: api)
    ti = TaskInstanceStandIn(run_counts={"running": active})
    return _sensor(store).poke(task_context(ti, run_id="r9"))


def _lease(store: str) -> dict | None:
    return PipelineLease(object_store(store), "app").holder()


def test_nothing_running_needs_no_connection_and_the_rollback_holds_the_pipeline(monkeypatch, store):
    def no_connection(conn_id):
        raise AssertionError("the API must not be asked")

    monkeypatch.setattr("handsoff.sensors.stop_deployments.api_from_connection", no_connection)

    assert _sensor(store).poke(task_context(TaskInstanceStandIn(run_counts={}), run_id="r9")) is True
    assert _lease(store)["holder"] == "r9"


def test_what_has_not_started_is_skipped_deploys_and_the_automatic_rollback_finish_first(monkeypatch, store):
    tasks = {
        "build": "success",
        "prod.one.deploy_a": "running",
        "prod.one.bake": None,
        "prod.two.deploy_b": None,
        "rollback_plan": None,
        "rollback.prod.one": "running",  # an automatic rollback of an earlier failure
        "rollback.prod.two": None,
        "outcome": None,
    }
    api = RunsStandIn(runs={"merge-1": "running"}, tasks={"merge-1": tasks})

    assert _poke(monkeypatch, store, api, active=1) is False  # deploy_a and the rollback go on: wait
    assert api.tasks["merge-1"] == {
        **tasks,
        "prod.one.bake": "skipped",
        "prod.two.deploy_b": "skipped",  # a deploy that never started is skipped too
    }
    assert api.runs["merge-1"] == "running"
    assert _lease(store)["stopped"] == ["merge-1"]  # before anything: no deploy of merge-1 starts now

    api.tasks["merge-1"].update(
        dict.fromkeys(["prod.one.deploy_a", "rollback.prod.one", "rollback_plan"], "success")
    )
    api.tasks["merge-1"].update({"rollback.prod.two": "success", "outcome": "skipped"})
    assert _poke(monkeypatch, store, api, active=1) is True
    assert (api.runs["merge-1"], api.notes["merge-1"]) == ("failed", "stopped by rollback r9: INC")


def test_a_queued_deployment_is_failed_before_it_redeploys(monkeypatch, store):
    api = RunsStandIn(runs={"merge-2": "queued"}, tasks={"merge-2": {}})

    assert _poke(monkeypatch, store, api, active=1) is True
    assert api.runs["merge-2"] == "failed"


def test_an_api_that_refuses_fails_the_rollback_saying_why(monkeypatch, store):
    api = RunsStandIn(runs={}, tasks={}, fail_with=AirflowApiError("PATCH answered 403: Forbidden", 403))

    with pytest.raises(AirflowFailException, match="cannot stop the running deployment of app: .*403"):
        _poke(monkeypatch, store, api, active=1)


@dataclass
class RacingScheduler(RunsStandIn):
    """The scheduler skips `racing` between the sensor's read and its PATCH: the API answers 409."""

    racing: str = ""

    def set_task_instance_state(self, dag_id, run_id, task_id, map_index, state, note) -> None:
        if task_id == self.racing and self.tasks[run_id][task_id] is None:
            self.tasks[run_id][task_id] = "skipped"
            raise AirflowApiError(f"PATCH answered 409: Task id {task_id} is already in skipped state", 409)
        super().set_task_instance_state(dag_id, run_id, task_id, map_index, state, note)


def test_a_task_the_scheduler_skips_while_it_is_being_stopped_is_looked_at_again_not_a_failure(
    monkeypatch, store
):
    tasks = {"prod.bake": "deferred", "prod.rest.deploy_dub": None, "prod.rest.deploy_pdx": None}
    api = RacingScheduler(
        runs={"merge-1": "running"}, tasks={"merge-1": tasks}, racing="prod.rest.deploy_dub"
    )

    assert _poke(monkeypatch, store, api, active=1) is False  # looked at again at the next poke
    assert api.tasks["merge-1"] == dict.fromkeys(tasks, "skipped")
    assert _poke(monkeypatch, store, api, active=1) is True
    assert (api.runs["merge-1"], api.notes["merge-1"]) == ("failed", "stopped by rollback r9: INC")


def test_any_other_refusal_of_a_stop_fails_the_rollback(monkeypatch, store):
    class Refusing(RunsStandIn):
        def set_task_instance_state(self, *args) -> None:
            raise AirflowApiError("PATCH answered 400: bad request", 400)

    api = Refusing(runs={"merge-1": "running"}, tasks={"merge-1": {"prod.bake": "deferred"}})
    with pytest.raises(AirflowFailException, match="400"):
        _poke(monkeypatch, store, api, active=1)
