"""Automatic rollback: a plan task picks the waves to roll back; one rollback task per wave restores them.

The plan runs when everything else is done (trigger rule ALL_DONE), so a target still deploying in
parallel is never rolled back before it finishes. Rollbacks run newest wave first; the graph shows
which ran (the others are skipped by the plan). Which waves and what each target goes back to are the
rules of `handsoff.model.rollback`. The run's failures are its failed tasks and the verdicts its tasks
recorded (`handsoff.store.verdicts`): a failed bake cleared or marked success in the UI still counts.

A restore happens at the coordinates the ledger recorded with the deploy being undone (the deployer's
resolved fields, the target's fields, the connection), not at today's spec. A target that cannot be
restored exactly is left as it is and named; the others are restored; then the task fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from handsoff.deployers.base import Deployer, RestoreImpossible
from handsoff.deployers.registry import get_deployer
from handsoff.model.records import LedgerEntry, TargetRecord, now_iso
from handsoff.model.rollback import RollbackRefused, automatic_restore, failed_tasks, plan_rollback
from handsoff.operators.base import HandsoffOperator
from handsoff.utils.verdicts import VerdictMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


def _run_states(context: Context, dag_id: str) -> dict[str, Any]:
    run_id = context["run_id"]
    return context["ti"].get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})


def _planned(
    context: Context, task: VerdictMixin, dag_id: str, plan: Mapping[str, Any]
) -> tuple[set[str], list[int]]:
    """The run's failures (failed task states, and the verdicts its tasks recorded) and the waves to roll
    back for them; failures not yet recorded as verdicts are recorded now."""
    failed = failed_tasks(_run_states(context, dag_id))
    recorded = task.verdicts.failed_tasks(task.commit, context["run_id"]) if task.commit else set()
    watched = {t for w in plan["waves"] for t in w["failure_tasks"]}
    watched |= {t for tasks in plan["stage_tasks"].values() for t in tasks}
    for missing in sorted((failed & watched) - recorded):
        task.found_bad(context, f"{missing} failed")
    failed |= recorded
    return failed, plan_rollback(plan["scope"], plan["waves"], plan["stage_tasks"], failed)


class RollbackPlanOperator(VerdictMixin, BaseBranchOperator):
    """Choose the rollback tasks to run from this run's failures (none when nothing failed).

    `plan` is {"scope", "waves": [{stage, wave, rollback_task, failure_tasks}], "stage_tasks"}; the
    watcher task `outcome_task` is always kept, so the branch never skips it.
    """

    template_fields = ("commit",)
    ui_color = "#fde2e2"

    def __init__(
        self,
        *,
        plan: dict[str, Any],
        outcome_task: str,
        pipeline: str,
        commit: str,
        store: str | None,
        aws_conn_id: str,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.outcome_task = outcome_task
        self.pipeline = pipeline
        self.commit = commit
        self.store = store
        self.aws_conn_id = aws_conn_id

    def choose_branch(self, context: Context) -> Iterable[str]:
        failed, chosen = _planned(context, self, self.dag_id, self.plan)
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
        record: TargetRecord,
        restore: LedgerEntry,
        run_id: str,
        failed_deploy: dict[str, Any] | None = None,
        **ledger: Any,
    ) -> LedgerEntry:
        """Roll `target` back from what it runs to `restore`, at the coordinates the ledger recorded; record
        it. RestoreImpossible, with nothing changed, when the restore point cannot be restored exactly (gone,
        or at another resource).

        What it undoes: `failed_deploy` (the in-flight mark of a deploy that failed part-way: its commit and
        config), else `record.current`. Shared by automatic and on-demand rollback; `ledger` adds fields to
        the entry (note, reason, ...).
        """
        name = target["fields"]["name"]
        if failed_deploy is not None:
            bad, config = failed_deploy.get("commit") or self.commit, failed_deploy.get("config") or {}
        else:
            undone = record.current
            bad = undone.commit if undone is not None and undone.commit else self.commit
            config = undone.config if undone is not None else {}
        config = config or restore.config
        deployer = get_deployer(config.get("deploy") or target["deploy"])
        fields = config.get("target") or target["fields"]
        _same_place(name, deployer, restore.config, config)
        with self.workspace() as tmp:
            ctx = self.deploy_context(
                deployer,
                stage=self.stage,
                wave=self.wave,
                target=fields,
                commit=bad or restore.commit,
                run_id=run_id,
                previous=restore,
                tmp=tmp,
                aws_conn_id=config.get("aws_conn_id"),
            )
            to = restore.commit[:12] or restore.note or "what ran before"
            self.log.info("Rolling back %s from %s to %s", name, (bad or "?")[:12], to)
            try:
                deployer.rollback(ctx)
            except RestoreImpossible:
                raise
            except Exception as err:  # retried (task retries); rollback is idempotent
                raise RuntimeError(f"rollback of target {name} failed: {err}") from err
        entry = LedgerEntry(
            commit=restore.commit,
            run_id=run_id,
            time=now_iso(),
            action="rollback",
            artifact=restore.artifact,
            stage=self.stage,
            wave=self.wave,
            detail=restore.detail,
            config=config,
            **ledger,
        )
        self.ledger.record_rollback(name, entry)
        return entry


def _same_place(name: str, deployer: Deployer, restore: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse a restore point recorded at another resource (a spec edit moved the target in between)."""
    if not restore.get("deploy") or not current.get("deploy"):
        return
    there, here = deployer.location(restore["deploy"]), deployer.location(current["deploy"])
    there["aws_conn_id"], here["aws_conn_id"] = restore.get("aws_conn_id"), current.get("aws_conn_id")
    if there != here:
        raise RestoreImpossible(
            f"target {name} moved since the version to restore ran there ({there} then, {here} now): "
            "restoring it would change another resource; roll it back by hand"
        )


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
        if self.index not in _planned(context, self, self.dag_id, self.plan)[1]:
            raise AirflowSkipException(f"wave {self.stage}.{self.wave} is not in this run's rollback")
        done, refused = [], []
        for target in self.targets:
            try:
                outcome = self._rollback(target, context["run_id"])
            except (RollbackRefused, RestoreImpossible) as err:
                self.log.error("%s", err)
                refused.append(str(err))
                continue
            if outcome:
                done.append(outcome)
        self.log.info("Rolled back: %s", done or "nothing (no target of this wave was changed by this run)")
        if refused:
            raise AirflowFailException(
                f"rollback of wave {self.stage}.{self.wave} refused: {'; '.join(refused)}"
            )
        return done

    def _rollback(self, target: dict[str, Any], run_id: str) -> dict[str, Any] | None:
        name = target["fields"]["name"]
        record, mark = self.ledger.read(name), self.ledger.mark(name)
        changed_by_us = mark is not None and mark.get("run_id") == run_id  # its deploy failed part-way
        decision = automatic_restore(record, run_id, changed_by_us, (mark or {}).get("before"))
        if not decision.change:
            self.log.info("%s: %s", name, decision.why)
            return None
        part_way = (
            mark if changed_by_us and not (record.current and record.current.run_id == run_id) else None
        )
        entry = self.restore(
            target, record, decision.to, run_id, part_way, note=f"rolled back {self.commit[:12]}"
        )
        return {"target": name, "from": self.commit, "to": entry.commit or None}


class RunOutcomeOperator(BaseOperator):
    """The run's watcher: runs only when something failed (ONE_FAILED) and fails the run, naming it."""

    ui_color = "#f5c6cb"

    def execute(self, context: Context) -> None:
        failed = sorted(k for k, v in _run_states(context, self.dag_id).items() if v == "failed")
        raise AirflowFailException(f"the deployment failed: {', '.join(failed) or 'see the failed tasks'}")
