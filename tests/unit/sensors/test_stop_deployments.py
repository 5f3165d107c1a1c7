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
from support.context import TaskInstanceStandIn, task_context

DEPLOYS = ["prod.one.deploy_a", "prod.two.deploy_b"]


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


def _sensor() -> StopDeploymentsSensor:
    return StopDeploymentsSensor(
        task_id="stop_deployments", pipeline="app", deploy_tasks=DEPLOYS, note="stopped by rollback r9: INC"
    )


def _poke(monkeypatch, api: RunsStandIn, active: int) -> bool:
    monkeypatch.setattr("handsoff.sensors.stop_deployments.api_from_connection", lambda conn_id: api)
    ti = TaskInstanceStandIn(run_counts={"running": active})
    return _sensor().poke(task_context(ti))


def test_nothing_running_needs_no_connection(monkeypatch):
    def no_connection(conn_id):
        raise AssertionError("the API must not be asked")

    monkeypatch.setattr("handsoff.sensors.stop_deployments.api_from_connection", no_connection)

    assert _sensor().poke(task_context(TaskInstanceStandIn(run_counts={}))) is True


def test_what_has_not_started_is_skipped_a_running_deploy_finishes_then_the_run_is_failed(monkeypatch):
    tasks = {
        "build": "success",
        "prod.one.deploy_a": "running",
        "prod.one.bake": None,
        "prod.two.deploy_b": None,
        "outcome": None,
    }
    api = RunsStandIn(runs={"merge-1": "running"}, tasks={"merge-1": tasks})

    assert _poke(monkeypatch, api, active=1) is False  # deploy_a still deploying: wait for it
    assert api.tasks["merge-1"] == {
        "build": "success",
        "prod.one.deploy_a": "running",
        "prod.one.bake": "skipped",
        "prod.two.deploy_b": "skipped",  # a deploy that never started is skipped too
        "outcome": "skipped",
    }
    assert api.runs["merge-1"] == "running"

    api.tasks["merge-1"]["prod.one.deploy_a"] = "success"
    assert _poke(monkeypatch, api, active=1) is True
    assert (api.runs["merge-1"], api.notes["merge-1"]) == ("failed", "stopped by rollback r9: INC")


def test_a_queued_deployment_is_failed_before_it_redeploys(monkeypatch):
    api = RunsStandIn(runs={"merge-2": "queued"}, tasks={"merge-2": {}})

    assert _poke(monkeypatch, api, active=1) is True
    assert api.runs["merge-2"] == "failed"


def test_an_api_that_refuses_fails_the_rollback_saying_why(monkeypatch):
    api = RunsStandIn(runs={}, tasks={}, fail_with=AirflowApiError("PATCH answered 403: Forbidden", 403))

    with pytest.raises(AirflowFailException, match="cannot stop the running deployment of app: .*403"):
        _poke(monkeypatch, api, active=1)
