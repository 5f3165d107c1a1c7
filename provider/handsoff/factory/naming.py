"""Every string contract between the factory and what it builds: task ids, XCom keys, DAG and run ids.

The factory passes these names to the operators it creates; operators, sensors and triggers never
assume them. No Airflow here: the CLI reads the DAG and run id rules too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: the start date of every handsoff DAG (runs are triggered or scheduled by window, never caught up)
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)

# The deployment DAG: source → [review] → build → stages … → rollback_plan → rollback.* → outcome
SOURCE_TASK = "source"
REVIEW_TASK = "review"
BUILD_TASK = "build"
WINDOW_TASK = "window"
APPROVAL_TASK = "approval"
BLOCKERS_TASK = "blockers"
BAKE_TASK = "bake"
ROLLBACK_PLAN_TASK = "rollback_plan"
ROLLBACK_GROUP = "rollback"
OUTCOME_TASK = "outcome"
#: the XCom key under which the source task pushes the commit the run deploys
COMMIT_XCOM = "commit"
#: Jinja for the run's commit, rendered in the tasks after `source` (our own template, never a spec's)
RUN_COMMIT = f"{{{{ ti.xcom_pull(task_ids='{SOURCE_TASK}', key='{COMMIT_XCOM}') }}}}"
RUN_COMMIT_SHORT = f"{{{{ (ti.xcom_pull(task_ids='{SOURCE_TASK}', key='{COMMIT_XCOM}') or '')[:12] }}}}"

# The on-demand rollback DAG: plan → stop_deployments → restore → report → release
ROLLBACK_SUFFIX = "__rollback"
PLAN_TASK = "plan"
STOP_TASK = "stop_deployments"
RESTORE_TASK = "restore"
REPORT_TASK = "report"
RELEASE_TASK = "release"

#: task ids of the deployment DAG that change targets, and of its automatic rollback (for stop_deployments)
DEPLOY_TASK_PATTERN = r"(.+\.)?deploy_[^.]+"
ROLLBACK_TASKS_PATTERN = rf"{ROLLBACK_PLAN_TASK}|{ROLLBACK_GROUP}\..+|{OUTCOME_TASK}"

#: run ids of runs started for a merged commit (`handsoff trigger`, the git hook): one run per commit
MERGE_RUN_PREFIX = "merge-"


def deploy_task(target: str) -> str:
    """The deploy task of a target, inside its wave's group."""
    return f"deploy_{target}"


def test_task(suite: str) -> str:
    """The (mapped) task of a stage's test suite, inside the stage's group."""
    return f"test_{suite}"


def group_path(*groups: str) -> str:
    """A task or group id inside nested task groups: ``prod.onebox.deploy_iad``."""
    return ".".join(groups)


def rollback_task(stage: str, wave: str) -> str:
    """The automatic rollback task of a wave, in the top-level rollback group."""
    return group_path(ROLLBACK_GROUP, stage, wave)


def rollback_dag_id(pipeline_id: str) -> str:
    """The dag_id of a pipeline's rollback DAG."""
    return f"{pipeline_id}{ROLLBACK_SUFFIX}"


def pipeline_id_of(dag_id: str) -> str | None:
    """The pipeline of a rollback dag_id (None for any other dag_id)."""
    return dag_id.removesuffix(ROLLBACK_SUFFIX) if dag_id.endswith(ROLLBACK_SUFFIX) else None


def merge_run_id(sha: str) -> str:
    """The run id of a merged commit: ``merge-`` and the first 12 characters of its SHA."""
    return f"{MERGE_RUN_PREFIX}{sha[:12]}"


def again_run_id(sha: str, at: datetime) -> str:
    """The run id of an explicit request to deploy a commit again: ``again-<sha12>-<UTC time>``."""
    return f"again-{sha[:12]}-{at.astimezone(UTC):%Y%m%dT%H%M%S}"


#: the execution_timeout of a task that sets none (its own work in a worker; waiting deferred is not counted)
TASK_TIMEOUT = timedelta(hours=1)
#: deploys and restores wait for AWS (a CloudFormation change set: up to an hour, twice)
DEPLOY_TIMEOUT = timedelta(hours=2)


def default_args(owners: tuple[str, ...]) -> dict[str, object]:
    """The default args of a handsoff DAG: its owners (or "handsoff"), no retries unless a task says so,
    and an execution_timeout, so that no task can hang a run (and its rollback) for ever."""
    return {"owner": ", ".join(owners) or "handsoff", "retries": 0, "execution_timeout": TASK_TIMEOUT}
