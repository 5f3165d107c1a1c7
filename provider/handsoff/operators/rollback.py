"""Automatic rollback: a plan task picks the waves to roll back; one rollback task per wave restores them.

The plan runs when everything else is done (trigger rule ALL_DONE), so a target still deploying in
parallel is never rolled back before it finishes. Rollbacks run newest wave first; the graph shows
which ran (the others are skipped by the plan). Which waves and what each target goes back to are the
rules of `handsoff.model.rollback`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from handsoff.deployers.base import Deployer
from handsoff.deployers.registry import get_deployer
from handsoff.model.records import LedgerEntry, now_iso
from handsoff.model.rollback import automatic_restore, failed_tasks, plan_rollback
from handsoff.operators.base import HandsoffOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def _run_states(context: Context, dag_id: str) -> dict[str, Any]:
    run_id = context["run_id"]
    return context["ti"].get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})


def _planned(context: Context, dag_id: str, plan: Mapping[str, Any]) -> tuple[set[str], list[int]]:
    failed = failed_tasks(_run_states(context, dag_id))
    return failed, plan_rollback(plan["scope"], plan["waves"], plan["stage_tasks"], failed)


class RollbackPlanOperator(BaseBranchOperator):
    """Choose the rollback tasks to run from this run's failures (none when nothing failed).

    `plan` is {"scope", "waves": [{stage, wave, rollback_task, failure_tasks}], "stage_tasks"}; the
    watcher task `outcome_task` is always kept, so the branch never skips it.
    """

    ui_color = "#fde2e2"

    def __init__(self, *, plan: dict[str, Any], outcome_task: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.outcome_task = outcome_task

    def choose_branch(self, context: Context) -> Iterable[str]:
        failed, chosen = _planned(context, self.dag_id, self.plan)
        if not chosen:
            self.log.info("Nothing to roll back (failed tasks: %s)", sorted(failed) or "none")
        else:
            names = [f"{self.plan['waves'][i]['stage']}.{self.plan['waves'][i]['wave']}" for i in chosen]
            self.log.info(
                "Failed: %s. Rolling back (%s), newest first: %s", sorted(failed), self.plan["scope"], names
            )
        return [*(self.plan["waves"][i]["rollback_task"] for i in chosen), self.outcome_task]


class TargetRestorer:
    """Restores one target to a ledger entry: automatic (this module) and on-demand rollback share it.

    For HandsoffOperator subclasses that have `stage` and `wave`.
    """

    def restore(
        self: Any,
        target: dict[str, Any],
        deployer: Deployer,
        bad: str,
        restore: LedgerEntry | None,
        run_id: str,
        **ledger: Any,
    ) -> LedgerEntry:
        """Roll `target` back from commit `bad` to `restore` (None: nothing) and record it in the ledger.

        Shared by automatic and on-demand rollback; `ledger` adds fields to the entry (note, reason, ...).
        """
        name = target["fields"]["name"]
        with self.workspace() as tmp:
            ctx = self.deploy_context(
                deployer,
                stage=self.stage,
                wave=self.wave,
                target=target["fields"],
                commit=bad,
                run_id=run_id,
                previous=restore,
                tmp=tmp,
            )
            to = (restore.commit[:12] or "what ran before handsoff") if restore else "nothing"
            self.log.info("Rolling back %s from %s to %s", name, bad[:12], to)
            try:
                deployer.rollback(ctx)
            except Exception as err:  # retried (task retries); rollback is idempotent
                raise RuntimeError(f"rollback of target {name} failed: {err}") from err
        entry = LedgerEntry(
            commit=restore.commit if restore else "",
            run_id=run_id,
            time=now_iso(),
            action="rollback",
            artifact=restore.artifact if restore else "",
            stage=self.stage,
            wave=self.wave,
            detail=restore.detail if restore else {},
            **ledger,
        )
        self.ledger.record_rollback(name, entry)
        return entry


class RollbackWaveOperator(TargetRestorer, HandsoffOperator):
    """Restore every target of one wave that this run changed to what the ledger says ran before."""

    ui_color = "#f8d7da"

    def __init__(
        self,
        *,
        stage: str,
        wave: str,
        targets: list[dict[str, Any]],
        plan: dict[str, Any],
        index: int,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.wave = wave
        self.targets = targets
        self.plan = plan
        self.index = index

    def execute(self, context: Context) -> list[dict[str, Any]]:
        # Decide again (same pure plan, same states): correct even when the plan task itself failed.
        if self.index not in _planned(context, self.dag_id, self.plan)[1]:
            raise AirflowSkipException(f"wave {self.stage}.{self.wave} is not in this run's rollback")
        states = _run_states(context, self.dag_id)
        done = []
        for target in self.targets:
            outcome = self._rollback(target, states.get(target["deploy_task"]), context["run_id"])
            if outcome:
                done.append(outcome)
        self.log.info("Rolled back: %s", done or "nothing (no target of this wave was changed by this run)")
        return done

    def _rollback(
        self, target: dict[str, Any], deploy_state: str | None, run_id: str
    ) -> dict[str, Any] | None:
        name = target["fields"]["name"]
        deployer = get_deployer(target["deploy"])
        decision = automatic_restore(
            self.ledger.read(name), run_id, deploy_state == "failed", deployer.rollback_unrecorded
        )
        if not decision.change:
            self.log.info("%s: %s", name, decision.why)
            return None
        entry = self.restore(
            target, deployer, self.commit, decision.to, run_id, note=f"rolled back {self.commit[:12]}"
        )
        return {"target": name, "from": self.commit, "to": entry.commit or None}


class RunOutcomeOperator(BaseOperator):
    """The run's watcher: runs only when something failed (ONE_FAILED) and fails the run, naming it."""

    ui_color = "#f5c6cb"

    def execute(self, context: Context) -> None:
        failed = sorted(k for k, v in _run_states(context, self.dag_id).items() if v == "failed")
        raise AirflowFailException(f"the deployment failed: {', '.join(failed) or 'see the failed tasks'}")
