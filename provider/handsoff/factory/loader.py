"""What the DAG files call: valid pipelines become DAGs; broken specs become one import error.

Airflow discards every DAG of a file that raises, so the valid pipelines are registered by one DAG file
(`load_dags`) and the broken ones are reported by another (`raise_spec_errors`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from airflow.sdk import DAG, get_parsing_context

from handsoff.factory.naming import pipeline_id_of, rollback_dag_id
from handsoff.factory.pipeline_dag import build_dag
from handsoff.factory.rollback_dag import build_rollback_dag
from handsoff.settings import default_specs_dir
from handsoff.spec import SpecError, SpecErrors, load_all, load_pipeline, pipeline_file_for

log = logging.getLogger(__name__)


class BrokenSpecs(SpecErrors):
    """Raised by the error-reporting DAG file; its message lists every broken spec (file: path: message)."""


def load_dags(specs_dir: str | Path | None = None) -> dict[str, DAG]:
    """DAGs of every valid pipeline and its rollback DAG; when a task runs, only the DAG it belongs to."""
    root = Path(specs_dir or default_specs_dir())
    wanted = get_parsing_context().dag_id
    if wanted:
        rollback_of = pipeline_id_of(wanted)
        path = pipeline_file_for(root, rollback_of or wanted)
        if path is not None:
            try:
                pipeline = load_pipeline(path, root)
            except SpecError:
                return {}
            dag = build_rollback_dag(pipeline) if rollback_of else build_dag(pipeline)
            return {dag.dag_id: dag}
    dags: dict[str, DAG] = {}
    for pid, pipeline in load_all(root).pipelines.items():
        try:
            dags[pid] = build_dag(pipeline)
            dags[rollback_dag_id(pid)] = build_rollback_dag(pipeline)
        except Exception:  # a factory bug in one pipeline must not take the others down
            log.exception("handsoff: could not build the DAG of pipeline %s (%s)", pid, pipeline.spec_file)
    return dags


def raise_spec_errors(specs_dir: str | Path | None = None) -> None:
    """Raise one error listing every broken spec under the specs dir (nothing when all are valid)."""
    if get_parsing_context().dag_id:
        return  # a task is running: its DAG lives in the other file
    root = Path(specs_dir or default_specs_dir())
    errors = load_all(root).errors
    if errors:
        raise BrokenSpecs(errors)
