"""The on-demand rollback DAG of a pipeline: `<pipeline>__rollback`, triggered by people, never scheduled.

plan → stop_deployments → <stage>.<wave>.restore, newest wave first → report

`plan` validates the request (DAG params: the UI's trigger form, or `handsoff rollback`) and branches to
the chosen waves' `restore` tasks; `stop_deployments` stops an in-flight deployment of the pipeline first
(see handsoff.sensors.stop_deployments). No window gate and no bake: a rollback is never held.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, TaskGroup, TriggerRule

from handsoff.factory import START_DATE
from handsoff.model import Pipeline
from handsoff.operators.rollback_request import (
    RestoreWaveOperator,
    RollbackReportOperator,
    RollbackRequestPlanOperator,
)
from handsoff.rollback_request import SCOPES, pipeline_layout, wave_key
from handsoff.sensors.stop_deployments import StopDeploymentsSensor

ROLLBACK_SUFFIX = "__rollback"


def rollback_dag_id(pipeline_id: str) -> str:
    """The dag_id of a pipeline's rollback DAG."""
    return f"{pipeline_id}{ROLLBACK_SUFFIX}"


def pipeline_id_of(dag_id: str) -> str | None:
    """The pipeline of a rollback dag_id (None for any other dag_id)."""
    return dag_id.removesuffix(ROLLBACK_SUFFIX) if dag_id.endswith(ROLLBACK_SUFFIX) else None


def build_rollback_dag(pipeline: Pipeline) -> DAG:
    """Create the rollback DAG of `pipeline`."""
    layout = pipeline_layout(pipeline)
    with DAG(
        dag_id=rollback_dag_id(pipeline.id),
        description=f"Roll {pipeline.id} back on demand: a target, a wave, a stage or everything",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,  # an on-call rollback must never sit queued behind a paused DAG
        tags=["handsoff", "rollback", *pipeline.tags],
        default_args={"owner": ", ".join(pipeline.owners) or "handsoff", "retries": 0},
        doc_md=_doc(pipeline),
        params=_params(layout),
    ) as dag:
        common = {
            "pipeline": pipeline.id,
            "store": pipeline.artifact_store,
            "aws_conn_id": pipeline.aws_conn_id,
        }
        stop = StopDeploymentsSensor(
            task_id="stop_deployments",
            pipeline=pipeline.id,
            note="stopped by rollback {{ run_id }}: {{ params.reason }}",
        )
        plan = RollbackRequestPlanOperator(task_id="plan", layout=layout, always=[stop.task_id], **common)
        plan >> stop
        stages = {name: TaskGroup(name) for name in dict.fromkeys(w["stage"] for w in layout)}
        restores, previous = [], None
        for wave in reversed(layout):
            with stages[wave["stage"]], TaskGroup(wave["wave"]):
                restore = RestoreWaveOperator(
                    task_id="restore",
                    stage=wave["stage"],
                    wave=wave["wave"],
                    targets=wave["targets"],
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
            task_id="report",
            restore_tasks=[r.task_id for r in restores],
            aws_conn_id=pipeline.aws_conn_id,
            trigger_rule=TriggerRule.NONE_FAILED,
        )
        [stop, *restores] >> report
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
