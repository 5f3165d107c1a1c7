"""Before an on-demand rollback: hold the pipeline, stop its in-flight deployment, wait until it is done.

First the sensor takes the pipeline's lease (`handsoff.store.lease`): from then on a deploy of the stopped
run ends skipped and a deploy of a newer run waits, so no deployment changes a target while the rollback
restores it.

Workers have no DB access, so the deployment is stopped through Airflow's REST API, reached through the
HTTP connection `handsoff_airflow_api` (host = the API server's URL, login/password of a user allowed to
edit the pipeline's runs). For each running run of the deployment DAG, every unfinished task instance
that is not a deploy in flight is set to skipped with a note; a deploy task (`deploy_tasks`) that is
running (or deferred in its canary bake) is left to finish, and so is the run's automatic rollback
(`protected_tasks`: its plan, its rollback tasks, its outcome; never skipped, even before they start):
the on-demand rollback waits for it and never cancels it. The sensor pokes again (reschedule mode: no
worker slot held) until none is left. The run then gets the note "stopped by rollback <run
id>: <reason>" and state failed. A queued run of the deployment is marked failed with the same note (it
would redeploy what the rollback removes).

When no deployment run is running or queued (counted through the task's own execution API), no
connection is needed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from handsoff.hooks.airflow_api import AirflowApi, AirflowApiError
from handsoff.model.pipeline import DEFAULT_AWS_CONN_ID
from handsoff.store.lease import PipelineLease
from handsoff.store.objects import object_store

if TYPE_CHECKING:
    from airflow.sdk import Context

API_CONN_ID = "handsoff_airflow_api"
_FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}
_IN_FLIGHT = {"running", "deferred", "restarting"}


def api_from_connection(conn_id: str) -> AirflowApi:
    """An authenticated client for the API server the HTTP connection `conn_id` names."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    host = (conn.host or "").rstrip("/")
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}" + (f":{conn.port}" if conn.port else "")
    api = AirflowApi(host)
    if conn.login:
        api.login(conn.login, conn.password or "")
    return api


class StopDeploymentsSensor(BaseSensorOperator):
    """Hold `pipeline`, stop its running deployment (its remaining tasks skipped) and wait for its deploys
    in flight and its automatic rollback to finish (`deploy_tasks`, `protected_tasks`: their task ids, as
    regular expressions)."""

    template_fields = ("note", "reason")
    ui_color = "#f5c6cb"

    def __init__(
        self,
        *,
        pipeline: str,
        deploy_tasks: str,
        protected_tasks: str,
        note: str,
        reason: str,
        store: str | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        api_conn_id: str = API_CONN_ID,
        **kwargs,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 3)
        kwargs.setdefault("timeout", 3600)
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.deploy_tasks = deploy_tasks
        self.protected_tasks = protected_tasks
        self.note = note
        self.reason = reason
        self.store = store
        self.aws_conn_id = aws_conn_id
        self.api_conn_id = api_conn_id

    def poke(self, context: Context) -> bool:
        lease = PipelineLease(object_store(self.store, self.aws_conn_id), self.pipeline)
        active = context["ti"].get_dr_count(dag_id=self.pipeline, states=["running", "queued"])
        held = lease.holder()
        stopped = held["stopped"] if held and held["holder"] == context["run_id"] else []
        if not active and not stopped:
            lease.take(context["run_id"], self.reason, [])
            self.log.info("No deployment of %s is running or queued", self.pipeline)
            return True
        try:
            api = api_from_connection(self.api_conn_id)
            runs = api.dag_runs(self.pipeline, ["running", "queued"]) if active else []
            # before anything is stopped: no deploy of these runs starts from now on, none of a newer one
            held = lease.take(context["run_id"], self.reason, [run["dag_run_id"] for run in runs])
            busy = [deploy for run in runs for deploy in self._stop(api, run)]
            if not busy:  # closed with the note, also those that ended by themselves since the last poke
                for run_id in held["stopped"]:
                    api.update_dag_run(self.pipeline, run_id, "failed", self.note)
                    self.log.info("Stopped deployment run %s: %s", run_id, self.note)
        except AirflowApiError as err:
            raise AirflowFailException(
                f"cannot stop the running deployment of {self.pipeline}: {err}"
            ) from err
        except Exception as err:
            if type(err).__name__ == "AirflowNotFoundException":
                raise AirflowFailException(
                    f"a deployment of {self.pipeline} is running and there is no connection "
                    f"{self.api_conn_id!r} (http: host = the API server URL, login/password) to stop it"
                ) from None
            raise
        if busy:
            self.log.info("Waiting for deploys and rollbacks in flight to finish: %s", ", ".join(busy))
            return False
        return True

    def _stop(self, api: AirflowApi, run: dict[str, Any]) -> list[str]:
        """Skip what has not started; return the deploys and rollback tasks still to finish."""
        run_id = run["dag_run_id"]
        busy = []
        if run.get("state") == "running":
            for ti in api.task_instances(self.pipeline, run_id):
                state, task_id = ti.get("state"), ti["task_id"]
                if state in _FINISHED:
                    continue
                protected = re.fullmatch(self.protected_tasks, task_id)
                if protected or (state in _IN_FLIGHT and re.fullmatch(self.deploy_tasks, task_id)):
                    busy.append(f"{run_id}/{task_id}")  # finishes first: a deploy, or the run's own rollback
                    continue
                index = ti.get("map_index", -1)
                try:
                    api.set_task_instance_state(self.pipeline, run_id, task_id, index, "skipped", self.note)
                except AirflowApiError as err:
                    if err.status != 409:
                        raise
                    # it changed state since it was read (the scheduler skipped it, or it started): look
                    # at it again at the next poke instead of failing the rollback
                    self.log.info("%s: %s changed state while being stopped: %s", run_id, task_id, err)
                    busy.append(f"{run_id}/{task_id}")
                    continue
                self.log.info("%s: skipped %s (was %s)", run_id, task_id, state or "not started")
        return busy
