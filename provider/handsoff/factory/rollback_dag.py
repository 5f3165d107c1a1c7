"""The on-demand rollback DAG of a pipeline: `<pipeline>__rollback`, triggered by people, never scheduled.

plan → stop_deployments → <stage>.<wave>.restore, newest wave first → report

`plan` validates the request (DAG params: the UI's trigger form, or `handsoff rollback`) and branches to
the chosen waves' `restore` tasks; `stop_deployments` stops an in-flight deployment of the pipeline first
(see handsoff.sensors.stop_deployments). No window gate and no bake: a rollback is never held.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, TaskGroup, TriggerRule

from handsoff.factory import naming
from handsoff.model.pipeline import Pipeline
from handsoff.model.rollback import SCOPES, pipeline_layout, wave_key
from handsoff.operators.rollback_request import (
    RestoreWaveOperator,
    RollbackReportOperator,
    RollbackRequestPlanOperator,
)
from handsoff.sensors.stop_deployments import StopDeploymentsSensor


def build_rollback_dag(pipeline: Pipeline) -> DAG:
    """Create the rollback DAG of `pipeline`."""
    layout = pipeline_layout(pipeline)
    with DAG(
        dag_id=naming.rollback_dag_id(pipeline.id),
        description=f"Roll {pipeline.id} back on demand: a target, a wave, a stage or everything",
        schedule=None,
        start_date=naming.START_DATE,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,  # an on-call rollback must never sit queued behind a paused DAG
        tags=["handsoff", "rollback", *pipeline.tags],
        default_args=naming.default_args(pipeline.owners),
        doc_md=_doc(pipeline),
        params=_params(layout),
    ) as dag:
        common = {
            "pipeline": pipeline.id,
            "store": pipeline.artifact_store,
            "aws_conn_id": pipeline.aws_conn_id,
        }
        stop = StopDeploymentsSensor(
            task_id=naming.STOP_TASK,
            pipeline=pipeline.id,
            deploy_tasks=_deploy_tasks(layout),
            note="stopped by rollback {{ run_id }}: {{ params.reason }}",
        )
        plan = RollbackRequestPlanOperator(
            task_id=naming.PLAN_TASK,
            layout=layout,
            restore_tasks={wave_key(w): naming.group_path(wave_key(w), naming.RESTORE_TASK) for w in layout},
            always=[stop.task_id],
            **common,
        )
        plan >> stop
        stages = {name: TaskGroup(name) for name in dict.fromkeys(w["stage"] for w in layout)}
        restores, previous = [], None
        for wave in reversed(layout):
            with stages[wave["stage"]], TaskGroup(wave["wave"]):
                restore = RestoreWaveOperator(
                    task_id=naming.RESTORE_TASK,
                    stage=wave["stage"],
                    wave=wave["wave"],
                    targets=wave["targets"],
                    plan_task=plan.task_id,
                    repo=pipeline.source.repo,
                    trigger_rule=TriggerRule.NONE_FAILED,
                    **common,
                )
            [plan, stop] >> restore
            if previous is not None:
                previous >> restore
            previous = restore
            restores.append(restore)
        report = RollbackReportOperator(
            task_id=naming.REPORT_TASK,
            restore_tasks=[r.task_id for r in restores],
            aws_conn_id=pipeline.aws_conn_id,
            trigger_rule=TriggerRule.NONE_FAILED,
        )
        [stop, *restores] >> report
    return dag


def _deploy_tasks(layout: list[dict]) -> list[str]:
    """The deploy task ids of the pipeline's own DAG (what `stop_deployments` lets finish)."""
    return [
        naming.group_path(w["stage"], w["wave"], naming.deploy_task(t["fields"]["name"]))
        for w in layout
        for t in w["targets"]
    ]


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


def _doc(pipeline: Pipeline) -> str:
    return (
        f"# Roll back {pipeline.id}\n\n"
        "Each chosen target goes back to its previous version from the ledger, or to `to` (a commit that "
        "ran there), newest wave first. A running deployment of the pipeline is stopped first (its remaining "
        "tasks skipped; deploys in flight finish). No window, no bake. The ledger records who, when and why; "
        "`report` reads the restored targets' rollback alarms once.\n\n"
        f"CLI: `handsoff rollback {pipeline.id} (--target T ... | --wave W | --stage S | --all) "
        "[--to COMMIT] --reason TEXT`"
    )
