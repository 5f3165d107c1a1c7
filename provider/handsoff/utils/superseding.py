"""Superseding: which run of a pipeline goes on, from what a task knows of its DAG's runs (task SDK).

Workers have no database access. The SDK's public calls give counts and task states
(``RuntimeTaskInstance.get_dr_count``, ``get_task_states``); a run's details (``run_after``, ``conf``)
come from the execution API's ``GET /dag-runs/{dag_id}/{run_id}``, reached through the supervisor's
``GetDagRun`` message (``dag_run_details``): the one Airflow-internal call handsoff makes, kept here.

`execution.mode` "superseded": a run that is about to wait (or waited) gives way to the newest run
queued behind it. A run is newer when it was queued later (``run_after``, then run id): the order in
which Airflow starts queued runs. A run with ``override_window`` in its conf is never superseded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk.exceptions import AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context

#: run conf key: a reason to deploy outside the deployment windows
OVERRIDE_KEY = "override_window"
#: XCom keys that make a gate decision visible on the run (the task's XCom tab)
OVERRIDE_XCOM = "window_override"
SUPERSEDED_XCOM = "superseded_by"


@dataclass(frozen=True)
class WaitingRun:
    """A run of the same DAG queued behind this one."""

    run_id: str
    run_after: datetime
    commit: str | None = None

    def message(self) -> str:
        """``superseded by <run id> (commit abc123def456)``: why the older run stops."""
        what = f"commit {self.commit[:12]}" if self.commit else "the branch head"
        return f"superseded by {self.run_id} ({what}), a newer run waiting to deploy"


def override_reason(context: Context) -> str | None:
    """The run conf's ``override_window`` reason, if any (blank counts as none)."""
    reason = (context["dag_run"].conf or {}).get(OVERRIDE_KEY)
    if reason is None:
        return None
    return str(reason).strip() or None


def newer_waiting_run(context: Context, first_task: str) -> WaitingRun | None:
    """The newest queued run of this DAG queued after this run (None when there is none); a run waits
    while its `first_task` has not started.

    One call when nothing waits (the usual case); otherwise the runs whose `first_task` never started
    are looked up one by one.
    """
    ti, mine = context["ti"], context["dag_run"]
    if not ti.get_dr_count(dag_id=mine.dag_id, states=["queued"]):
        return None
    states = ti.get_task_states(dag_id=mine.dag_id, task_ids=[first_task])
    waiting = []
    for run_id, tasks in states.items():
        if run_id == mine.run_id or tasks.get(first_task) is not None:
            continue
        run = dag_run_details(mine.dag_id, run_id)
        if run.state == "queued" and (run.run_after, run_id) > (mine.run_after, mine.run_id):
            waiting.append(WaitingRun(run_id, run.run_after, (run.conf or {}).get("commit")))
    return max(waiting, key=lambda run: (run.run_after, run.run_id), default=None)


def skip_superseded(context: Context, newer: WaitingRun, where: str) -> NoReturn:
    """End this task skipped (and so the rest of the run), saying which run supersedes it and where."""
    message = f"{newer.message()}; this run stops at {where}"
    context["ti"].xcom_push(key=SUPERSEDED_XCOM, value={"run_id": newer.run_id, "message": message})
    raise AirflowSkipException(message)


def dag_run_details(dag_id: str, run_id: str) -> Any:
    """The execution API's view of a run (state, run_after, conf, ...)."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetDagRun

    return task_runner.SUPERVISOR_COMMS.send(GetDagRun(dag_id=dag_id, run_id=run_id))
