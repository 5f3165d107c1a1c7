"""The spec layer: JSON pipeline specs → validated ``model.Pipeline`` objects (no Airflow here)."""

from handsoff.spec.errors import SpecError, SpecErrors, SpecIssue
from handsoff.spec.files import find_spec_files, pipeline_file_for
from handsoff.spec.load import LoadResult, load_all, load_paths, load_pipeline, validate_paths

__all__ = [
    "LoadResult",
    "SpecError",
    "SpecErrors",
    "SpecIssue",
    "find_spec_files",
    "load_all",
    "load_paths",
    "load_pipeline",
    "pipeline_file_for",
    "validate_paths",
]
