"""What happened in a run under dag.test(): task states from the metadata DB; running the rollback DAG."""

from __future__ import annotations


def task_states(run) -> dict[str, str]:
    """Task id (with map index folded) → state of every task instance of `run`."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        return {ti.task_id: ti.state for ti in tis}


def run_rollback(dag, **conf):
    """dag.test() of a rollback DAG with every param given (dag.test keeps the previous run's conf)."""
    defaults = {"targets": [], "wave": None, "stage": None, "to": None, "requested_by": None}
    return dag.test(run_conf={**defaults, **conf})
