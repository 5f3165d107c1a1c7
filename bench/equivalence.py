"""Check that the three forms of the parse benchmark define the same DAGs, by their serialized form.

``python equivalence.py DAG_FOLDER OUT.json`` (run with the venv of the form: dag-factory has its own) writes
every DAG of the folder as Airflow serializes it, tasks keyed by id. ``compare`` diffs two such files.
The hand-written Python must match handsoff exactly (file locations aside). dag-factory differs where it
cannot follow (flat tasks without TaskGroups, see generate.py) or adds its own (the YAML appended to
doc_md, its "dagfactory" tag, display name, max_active_tasks); those paths are listed, never hidden.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: Differences expected in every file (where the DAG was defined).
LOCATION_KEYS = ("fileloc", "relative_fileloc", "_processor_dags_folder")
#: DAG-level keys dag-factory sets its own way or that follow from its flat task list.
DAGFACTORY_DAG_KEYS = ("doc_md", "tags", "dag_display_name", "max_active_tasks", "task_group", "timezone")
#: Task-level keys that follow from the flat task list (no TaskGroup) in dag-factory.
DAGFACTORY_TASK_KEYS = ("_task_display_name", "task_display_name", "ui_color", "ui_fgcolor", "label")


def describe(dag_folder: str) -> dict[str, Any]:
    """Every DAG of the folder, serialized, with its tasks keyed by task id."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=dag_folder)
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    described = {}
    for dag_id, dag in sorted(bag.dags.items()):
        data = json.loads(json.dumps(DagSerialization.to_dict(dag)["dag"], default=str))
        data["tasks"] = {task["__var"]["task_id"]: task["__var"] for task in data["tasks"]}
        for key in LOCATION_KEYS:
            data.pop(key, None)
        described[dag_id] = data
    return described


def differences(left: Any, right: Any, path: str = "$") -> list[str]:
    """JSON paths where two values differ."""
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(left.keys() | right.keys(), key=str):
            if key not in left or key not in right:
                found.append(f"{path}.{key}")
            else:
                found += differences(left[key], right[key], f"{path}.{key}")
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [
            d
            for i, (a, b) in enumerate(zip(left, right, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if left == right else [path]


def compare(reference: dict[str, Any], other: dict[str, Any], *, dagfactory: bool = False) -> dict[str, Any]:
    """Differences of `other` from `reference`: unexpected ones (must be none) and expected ones by kind."""
    unexpected, expected = [], set()
    if reference.keys() != other.keys():
        unexpected.append(f"DAG ids differ: {sorted(reference.keys() ^ other.keys())[:5]}")
    for dag_id in sorted(reference.keys() & other.keys()):
        for diff in differences(reference[dag_id], other[dag_id]):
            parts = diff.split(".")
            key = parts[1] if len(parts) > 1 else ""
            task_key = parts[3].split("[")[0] if key == "tasks" and len(parts) > 3 else ""
            if dagfactory and (key in DAGFACTORY_DAG_KEYS or task_key in DAGFACTORY_TASK_KEYS):
                expected.add(".".join(parts[:2] if key != "tasks" else ["$", "tasks", "*", task_key]))
            else:
                unexpected.append(f"{dag_id}: {diff}")
    return {"unexpected": unexpected[:20], "unexpected_count": len(unexpected), "expected": sorted(expected)}


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(describe(sys.argv[1])))
