"""What the DAG files call: valid pipelines become DAGs; broken specs become one import error.

Airflow discards every DAG of a file that raises, so the valid pipelines are registered by one DAG file
(`load_dags`) and the broken ones are reported by another (`raise_spec_errors`). A broken spec keeps its
rollback DAG (built from its id, store and connection: `spec.load.rollback_essentials`), so that what it
deployed can still be rolled back.
"""

from __future__ import annotations

import logging
from pathlib import Path

from airflow.sdk import DAG, get_parsing_context

from handsoff.factory.naming import pipeline_id_of, rollback_dag_id
from handsoff.factory.pipeline_dag import build_dag
from handsoff.factory.rollback_dag import RollbackSubject, build_rollback_dag
from handsoff.settings import default_specs_dir
from handsoff.spec import SpecError, SpecErrors, load_all, load_pipeline, pipeline_file_for
from handsoff.spec.files import find_spec_files
from handsoff.spec.load import rollback_essentials

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
                subject = _broken_subject(path, root) if rollback_of else None
                return {wanted: build_rollback_dag(subject)} if subject else {}
            dag = build_rollback_dag(pipeline) if rollback_of else build_dag(pipeline)
            return {dag.dag_id: dag}
    dags: dict[str, DAG] = {}
    loaded = load_all(root)
    for pid, pipeline in loaded.pipelines.items():
        try:
            dags[pid] = build_dag(pipeline)
            dags[rollback_dag_id(pid)] = build_rollback_dag(pipeline)
        except Exception:  # a factory bug in one pipeline must not take the others down
            log.exception("handsoff: could not build the DAG of pipeline %s (%s)", pid, pipeline.spec_file)
    broken = {Path(issue.file) for issue in loaded.errors} & set(find_spec_files(root))
    for path in sorted(broken):
        subject = _broken_subject(path, root)
        if subject is not None and subject.pipeline not in loaded.pipelines:
            dags.setdefault(rollback_dag_id(subject.pipeline), build_rollback_dag(subject))
    return dags


def _broken_subject(path: Path, root: Path) -> RollbackSubject | None:
    """The rollback DAG's subject of a spec that does not load, from its essentials."""
    found = rollback_essentials(path, root)
    if found is None:
        return None
    return RollbackSubject(
        found.pipeline, found.artifact_store, found.aws_conn_id, found.repo, broken=str(path)
    )


def raise_spec_errors(specs_dir: str | Path | None = None) -> None:
    """Raise one error listing every broken spec under the specs dir (nothing when all are valid)."""
    if get_parsing_context().dag_id:
        return  # a task is running: its DAG lives in the other file
    root = Path(specs_dir or default_specs_dir())
    errors = load_all(root).errors
    if errors:
        raise BrokenSpecs(errors)
