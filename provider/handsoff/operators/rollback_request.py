"""The on-demand rollback DAG's tasks: `plan` the request, `restore` each chosen wave, `report` alarms.

`plan` validates against the spec's layout and the ledger and changes nothing; it branches to the
chosen waves' `restore` tasks (the others are skipped without running). Each `restore` reads the ledger
again when it runs (after `stop_deployments`), so a deploy that finished meanwhile is accounted for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from handsoff.deployers.registry import get_deployer
from handsoff.model.rollback import (
    Request,
    RollbackRequestError,
    choose,
    requested_restore,
    restore_point,
    wave_key,
)
from handsoff.operators.base import HandsoffOperator
from handsoff.operators.rollback import TargetRestorer
from handsoff.store.artifacts import store_root
from handsoff.store.ledger import Ledger

if TYPE_CHECKING:
    from airflow.sdk import Context

#: the XCom key of the plan: which waves and targets the restore tasks change
PLAN_KEY = "plan"


def requested_by(context: Context, request: Request) -> str:
    """`requested_by` as given, else the user who triggered the run, else "unknown"."""
    return request.requested_by or getattr(context["dag_run"], "triggering_user_name", None) or "unknown"


class RollbackRequestPlanOperator(BaseBranchOperator):
    """Validate the request (names, reason, `to` in each target's history); branch to the chosen waves.

    `restore_tasks` maps each wave (`stage.wave`) to its restore task; `always` are kept in any case.
    """

    ui_color = "#fde2e2"

    def __init__(
        self,
        *,
        pipeline: str,
        layout: list[dict[str, Any]],
        store: str | None,
        aws_conn_id: str,
        restore_tasks: dict[str, str],
        always: list[str],
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.layout = layout
        self.store = store
        self.aws_conn_id = aws_conn_id
        self.restore_tasks = restore_tasks
        self.always = always

    def choose_branch(self, context: Context) -> Iterable[str]:
        request = Request.from_params(context["params"])
        ledger = Ledger(store_root(self.store, self.aws_conn_id), self.pipeline)
        try:
            chosen = choose(self.layout, request)
            plan = []
            for index, names in chosen:
                restores = {name: restore_point(ledger.read(name), request.to) for name in names}
                plan.append({"wave": wave_key(self.layout[index]), "targets": names})
                for name, entry in restores.items():
                    to = (entry.commit[:12] or "what ran before handsoff") if entry else "nothing to do"
                    self.log.info("%s: %s → %s", wave_key(self.layout[index]), name, to)
        except RollbackRequestError as err:
            raise AirflowFailException(
                f"rollback of {self.pipeline} refused, nothing changed: {err}"
            ) from None
        self.log.info(
            "Rollback of %s (%s) requested by %s: %s",
            self.pipeline,
            request.scope,
            requested_by(context, request),
            request.reason,
        )
        context["ti"].xcom_push(key=PLAN_KEY, value=plan)
        return [*self.always, *(self.restore_tasks[p["wave"]] for p in plan)]


class RestoreWaveOperator(TargetRestorer, HandsoffOperator):
    """Put the planned targets of one wave back to their previous version (or `to`); record it."""

    ui_color = "#f8d7da"

    def __init__(
        self, *, stage: str, wave: str, targets: list[dict[str, Any]], plan_task: str, **kwargs
    ) -> None:
        super().__init__(commit="", **kwargs)
        self.stage = stage
        self.wave = wave
        self.targets = targets
        self.plan_task = plan_task

    def execute(self, context: Context) -> list[dict[str, Any]]:
        request = Request.from_params(context["params"])
        plan = context["ti"].xcom_pull(task_ids=self.plan_task, key=PLAN_KEY) or []
        names = next((p["targets"] for p in plan if p["wave"] == f"{self.stage}.{self.wave}"), None)
        if names is None:
            raise AirflowSkipException(f"wave {self.stage}.{self.wave} is not in this rollback")
        by = requested_by(context, request)
        done = []
        for target in self.targets:
            if target["fields"]["name"] in names:
                outcome = self._restore(target, request, by, context["run_id"])
                if outcome:
                    done.append(outcome)
        return done

    def _restore(
        self, target: dict[str, Any], request: Request, by: str, run_id: str
    ) -> dict[str, Any] | None:
        name = target["fields"]["name"]
        record = self.ledger.read(name)
        try:
            decision = requested_restore(record, request.to, run_id)
        except RollbackRequestError as err:
            raise AirflowFailException(str(err)) from None
        if not decision.change:
            self.log.info("%s: %s", name, decision.why)
            return None
        current, restore = record.current, decision.to
        deployer = get_deployer(target["deploy"])
        self.log.info("On-demand rollback of %s (%s: %s)", name, by, request.reason)
        note = f"rolled back {current.commit[:12]} on demand by {by}: {request.reason}"
        entry = self.restore(
            target,
            deployer,
            current.commit,
            restore,
            run_id,
            note=note,
            requested_by=by,
            reason=request.reason,
        )
        return {
            "target": name,
            "from": current.commit,
            "to": entry.commit or None,
            "alarms": target["alarms"],
        }


class RollbackReportOperator(BaseOperator):
    """Read each restored target's rollback alarms once; log and return them ("no alarms" when none)."""

    ui_color = "#e2e3e5"

    def __init__(self, *, restore_tasks: list[str], aws_conn_id: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.restore_tasks = restore_tasks
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        restored = []
        for task_id in self.restore_tasks:
            restored += context["ti"].xcom_pull(task_ids=task_id) or []
        report: dict[str, Any] = {}
        for item in restored:
            report[item["target"]] = {"to": item["to"], "alarms": self._states(item["alarms"])}
            self.log.info(
                "%s now runs %s; alarms: %s",
                item["target"],
                (item["to"] or "nothing")[:12],
                report[item["target"]]["alarms"],
            )
        if not report:
            self.log.info("No target was changed by this rollback")
        return report

    def _states(self, alarms: dict[str, list[str]]) -> dict[str, str] | str:
        if not alarms:
            return "no alarms"
        from handsoff.hooks.cloudwatch import CloudWatchAlarmHook

        states: dict[str, str] = {}
        for region, names in alarms.items():
            try:
                hook = CloudWatchAlarmHook(aws_conn_id=self.aws_conn_id, region_name=region or None)
                states.update(hook.alarm_states(names))
            except Exception as err:  # the rollback is done: report what could not be read, do not fail
                states.update({name: f"unreadable ({err})" for name in names})
        return states
