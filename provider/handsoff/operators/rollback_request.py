"""The on-demand rollback DAG's tasks: `plan` the request, `restore` the chosen targets, `report` alarms.

`plan` validates the request against the spec's layout and the ledger (which also knows targets the spec
renamed or removed) and changes nothing. `restore` reads the ledger again when it runs (after
`stop_deployments`, which holds the pipeline's lease), so a deploy that finished meanwhile counts, and puts
each chosen target back, newest wave first, at the coordinates its ledger entry recorded. A target that
cannot be restored exactly is left as it is and named; the task then fails. `release` frees the lease.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from handsoff.deployers.base import RestoreImpossible
from handsoff.model.rollback import (
    Request,
    RollbackRequestError,
    choose,
    requested_restore,
    restore_point,
    wave_key,
    with_ledger_targets,
)
from handsoff.operators.base import HandsoffOperator
from handsoff.operators.rollback import TargetRestorer
from handsoff.store.lease import LEASE_TTL

if TYPE_CHECKING:
    from airflow.sdk import Context

#: the XCom key of the plan: the targets the restore task changes, in order, with their wave and deployer
PLAN_KEY = "plan"


def requested_by(context: Context, request: Request) -> str:
    """`requested_by` as given, else the user who triggered the run, else "unknown"."""
    return request.requested_by or getattr(context["dag_run"], "triggering_user_name", None) or "unknown"


class RollbackRequestPlanOperator(HandsoffOperator):
    """Validate the request (names, reason, `to` in each target's history); keep the plan as XCom."""

    ui_color = "#fde2e2"

    def __init__(self, *, layout: list[dict[str, Any]], **kwargs) -> None:
        super().__init__(**kwargs)
        self.layout = layout

    def execute(self, context: Context) -> list[dict[str, Any]]:
        request = Request.from_params(context["params"])
        records = {record.target: record for record in self.ledger.all()}
        layout = with_ledger_targets(self.layout, list(records.values()))
        try:
            chosen = choose(layout, request)
            targets = {t["fields"]["name"]: (w, t) for w in layout for t in w["targets"]}
            names = [name for _, wave_names in chosen for name in wave_names]  # newest wave first
            plan = []
            for name in names:
                wave, target = targets[name]
                to = restore_point(self.ledger.read(name), request.to)
                plan.append({"wave": wave_key(wave), "stage": wave["stage"], "name": wave["wave"], **target})
                shown = (to.commit[:12] or to.note or "what ran before") if to else "nothing to do"
                self.log.info("%s: %s → %s", wave_key(wave), name, shown)
        except RollbackRequestError as err:
            raise AirflowFailException(
                f"rollback of {self.pipeline} refused, nothing changed: {err}"
            ) from None
        by = requested_by(context, request)
        self.log.info(
            "Rollback of %s (%s) requested by %s: %s", self.pipeline, request.scope, by, request.reason
        )
        context["ti"].xcom_push(key=PLAN_KEY, value=plan)
        return plan


class RestoreTargetsOperator(TargetRestorer, HandsoffOperator):
    """Put the planned targets back to their previous version (or `to`), newest first; record it."""

    ui_color = "#f8d7da"

    def __init__(self, *, plan_task: str, **kwargs) -> None:
        super().__init__(commit="", **kwargs)
        self.plan_task = plan_task
        self.stage = self.wave = ""

    def execute(self, context: Context) -> list[dict[str, Any]]:
        request = Request.from_params(context["params"])
        plan = context["ti"].xcom_pull(task_ids=self.plan_task, key=PLAN_KEY) or []
        by = requested_by(context, request)
        done, refused = [], []
        for target in plan:
            self.lease.take(context["run_id"], f"{by}: {request.reason}", [], LEASE_TTL)  # renew as we go
            self.stage, self.wave = target["stage"], target["name"]
            try:
                outcome = self._restore(target, request, by, context["run_id"])
            except (RollbackRequestError, RestoreImpossible) as err:
                self.log.error("%s", err)
                refused.append(str(err))
                continue
            if outcome:
                done.append(outcome)
        if refused:
            raise AirflowFailException(f"rollback of {self.pipeline}: {'; '.join(refused)}")
        return done

    def _restore(
        self, target: dict[str, Any], request: Request, by: str, run_id: str
    ) -> dict[str, Any] | None:
        name = target["fields"]["name"]
        record = self.ledger.read(name)
        decision = requested_restore(record, request.to, run_id)
        if not decision.change:
            self.log.info("%s: %s", name, decision.why)
            return None
        current = record.current
        self.log.info("On-demand rollback of %s (%s: %s)", name, by, request.reason)
        note = f"rolled back {current.commit[:12] or current.note} on demand by {by}: {request.reason}"
        entry = self.restore(
            target, record, decision.to, run_id, note=note, requested_by=by, reason=request.reason
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

    def __init__(self, *, restore_task: str, aws_conn_id: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.restore_task = restore_task
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        restored = context["ti"].xcom_pull(task_ids=self.restore_task) or []
        report: dict[str, Any] = {}
        for item in restored:
            report[item["target"]] = {"to": item["to"], "alarms": self._states(item["alarms"])}
            self.log.info(
                "%s now runs %s; alarms: %s",
                item["target"],
                (item["to"] or "what ran before handsoff")[:12],
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


class ReleaseLeaseOperator(HandsoffOperator):
    """Free the pipeline's lease this rollback took (runs whatever happened before it)."""

    ui_color = "#e2e3e5"

    def execute(self, context: Context) -> None:
        self.lease.release(context["run_id"])
        self.log.info("Released %s for deployments", self.pipeline)
