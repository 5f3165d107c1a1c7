"""The on-demand rollback DAG of a pipeline: `<pipeline>__rollback`, triggered by people, never scheduled.

plan → stop_deployments → restore → report, and release (whatever happened)

`plan` validates the request (DAG params: the UI's trigger form, or `handsoff rollback`) against the spec's
layout and the ledger; `stop_deployments` takes the pipeline's lease and stops an in-flight deployment
(see handsoff.sensors.stop_deployments); `restore` puts the chosen targets back newest first, at the
coordinates the ledger recorded; `release` frees the lease whatever happened. No window gate and no bake:
a rollback is never held. A pipeline whose spec is broken keeps its rollback DAG, built from the spec's
essentials (id, store, connection): the ledger knows the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule

from handsoff.factory import naming
from handsoff.model.pipeline import Pipeline
from handsoff.model.rollback import SCOPES, pipeline_layout, wave_key
from handsoff.operators.rollback_request import (
    ReleaseLeaseOperator,
    RestoreTargetsOperator,
    RollbackReportOperator,
    RollbackRequestPlanOperator,
)
from handsoff.sensors.stop_deployments import StopDeploymentsSensor


@dataclass(frozen=True)
class RollbackSubject:
    """What the rollback DAG of a pipeline is built from: a valid pipeline, or a broken spec's essentials."""

    pipeline: str
    artifact_store: str | None
    aws_conn_id: str
    repo: str
    layout: list[dict[str, Any]] = field(default_factory=list)
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    broken: str = ""  # the spec file, when the spec does not load

    @classmethod
    def of(cls, pipeline: Pipeline) -> RollbackSubject:
        """The subject of a valid pipeline."""
        return cls(
            pipeline.id,
            pipeline.artifact_store,
            pipeline.aws_conn_id,
            pipeline.source.repo,
            pipeline_layout(pipeline),
            pipeline.owners,
            pipeline.tags,
        )


def build_rollback_dag(subject: RollbackSubject | Pipeline) -> DAG:
    """Create the rollback DAG of a pipeline (or of a broken spec's essentials)."""
    if isinstance(subject, Pipeline):
        subject = RollbackSubject.of(subject)
    with DAG(
        dag_id=naming.rollback_dag_id(subject.pipeline),
        description=f"Roll {subject.pipeline} back on demand: a target, a wave, a stage or everything",
        schedule=None,
        start_date=naming.START_DATE,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,  # an on-call rollback must never sit queued behind a paused DAG
        tags=["handsoff", "rollback", *subject.tags],
        default_args=naming.default_args(subject.owners),
        doc_md=_doc(subject),
        params=_params(subject.layout),
    ) as dag:
        common = {
            "pipeline": subject.pipeline,
            "store": subject.artifact_store,
            "aws_conn_id": subject.aws_conn_id,
            "repo": subject.repo,
        }
        plan = RollbackRequestPlanOperator(task_id=naming.PLAN_TASK, layout=subject.layout, **common)
        stop = StopDeploymentsSensor(
            task_id=naming.STOP_TASK,
            pipeline=subject.pipeline,
            deploy_tasks=naming.DEPLOY_TASK_PATTERN,
            protected_tasks=naming.ROLLBACK_TASKS_PATTERN,
            note="stopped by rollback {{ run_id }}: {{ params.reason }}",
            reason="{{ params.reason }}",
            store=subject.artifact_store,
            aws_conn_id=subject.aws_conn_id,
        )
        restore = RestoreTargetsOperator(
            task_id=naming.RESTORE_TASK,
            plan_task=plan.task_id,
            execution_timeout=naming.DEPLOY_TIMEOUT,
            **common,
        )
        report = RollbackReportOperator(
            task_id=naming.REPORT_TASK, restore_task=restore.task_id, aws_conn_id=subject.aws_conn_id
        )
        release = ReleaseLeaseOperator(
            task_id=naming.RELEASE_TASK, trigger_rule=TriggerRule.ALL_DONE, **common
        )
        (
            plan >> stop >> restore >> [report, release]
        )  # both leaves: a refused or failed rollback fails the run
    return dag


def _params(layout: list[dict]) -> dict[str, Param]:
    targets = [t["fields"]["name"] for w in layout for t in w["targets"]]
    return {
        "scope": Param("wave", enum=list(SCOPES), description="What to roll back"),
        "targets": Param(
            [],
            type="array",
            items={"type": "string"},
            examples=targets,
            description="scope target: the targets to roll back",
        ),
        "wave": Param(
            None,
            type=["null", "string"],
            examples=[wave_key(w) for w in layout],
            description="scope wave: the wave (WAVE or STAGE.WAVE)",
        ),
        "stage": Param(
            None,
            type=["null", "string"],
            examples=list(dict.fromkeys(w["stage"] for w in layout)),
            description="scope stage: the stage",
        ),
        "to": Param(
            None,
            type=["null", "string"],
            description="Commit to go back to (deployed there before); empty: each target's previous version",
        ),
        "reason": Param(type="string", minLength=1, description="Why (recorded in the ledger)"),
        "requested_by": Param(
            None, type=["null", "string"], description="Who asks (empty: the user who triggers the run)"
        ),
    }


def _doc(subject: RollbackSubject) -> str:
    broken = (
        f"**The spec `{subject.broken}` does not load**: this DAG is built from its id, store and "
        "connection; "
        "every target the ledger knows can still be rolled back.\n\n"
        if subject.broken
        else ""
    )
    return (
        f"# Roll back {subject.pipeline}\n\n{broken}"
        "Each chosen target goes back to its previous version from the ledger, or to `to` (a commit that "
        "ran there), newest wave first. A running deployment of the pipeline is stopped first (its remaining "
        "tasks skipped; deploys in flight finish). No window, no bake. The ledger records who, when and why; "
        "`report` reads the restored targets' rollback alarms once.\n\n"
        f"CLI: `handsoff rollback {subject.pipeline} (--target T ... | --wave W | --stage S | --all) "
        "[--to COMMIT] --reason TEXT`"
    )
