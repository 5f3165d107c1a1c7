"""A task's runtime context for unit tests that call `execute` directly, without a worker.

Only the part of Airflow's task instance that handsoff's tasks use: XCom push and pull, and the task
SDK's questions about the DAG's runs (`get_dr_count`, `get_task_states`). The whole pipelines run for
real in tests/system; these unit tests check one task's decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


@dataclass
class TaskInstanceStandIn:
    """What a task sees as `context["ti"]`; `xcoms` holds (task_id, key) → value, pushes included."""

    task_id: str = "task"
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)
    run_counts: dict[str, int] = field(default_factory=dict)
    task_states: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @property
    def pushed(self) -> dict[str, Any]:
        """What this task pushed, by key."""
        return {key: value for (task, key), value in self.xcoms.items() if task == self.task_id}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids or self.task_id, key))

    def get_dr_count(self, dag_id: str, states: list[str]) -> int:
        return sum(self.run_counts.get(state, 0) for state in states)

    def get_task_states(
        self, dag_id: str, task_ids: list[str] | None = None, run_ids: list[str] | None = None
    ):
        runs = {run: states for run, states in self.task_states.items() if not run_ids or run in run_ids}
        if task_ids:
            return {run: {t: s for t, s in states.items() if t in task_ids} for run, states in runs.items()}
        return runs


def task_context(
    ti: TaskInstanceStandIn | None = None,
    run_id: str = "manual__1",
    dag_id: str = "app",
    conf: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    **run: Any,
) -> dict[str, Any]:
    """`context` for `operator.execute(context)`: the task instance, the run (id, conf, …), params."""
    dag_run = SimpleNamespace(dag_id=dag_id, run_id=run_id, conf=conf or {}, **run)
    return {"ti": ti or TaskInstanceStandIn(), "run_id": run_id, "dag_run": dag_run, "params": params or {}}
