"""The loader: good pipelines load beside broken ones, which show as import errors with file and path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.airflow import AirflowProcess, api_client, api_env, free_port, wait_for_http
from support.repos import EXAMPLES_SPECS, REPO_ROOT

ALL_DAG_IDS = [
    f"{pipeline}{suffix}"
    for pipeline in ("greeter-app", "greeter-config", "greeter-lambda")
    for suffix in ("", "__rollback")
]


@pytest.fixture
def mixed_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example specs plus two broken ones: an unknown key deep inside, and malformed JSON."""
    specs = tmp_path / "specs"
    shutil.copytree(EXAMPLES_SPECS, specs)
    broken = json.loads((specs / "greeter-app.json").read_text())
    broken["pipeline"] = "greeter-typo"
    broken["stages"][0]["tests"][0]["shrads"] = 2
    (specs / "greeter-typo.json").write_text(json.dumps(broken, indent=2))
    (specs / "nested").mkdir()
    (specs / "nested" / "half-written.json").write_text('{"pipeline": "half",\n  "stages": [\n')
    monkeypatch.setenv("HANDSOFF_SPECS_DIR", str(specs))
    return specs


def test_every_example_dag_loads_and_serializes():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))

    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(ALL_DAG_IDS)
    for dag in bag.dags.values():
        serialized = DagSerialization.to_dict(dag)
        assert serialized["dag"]["dag_id"] == dag.dag_id
        # the UI's graph sorts every task group topologically: a cycle between groups leaves it blank
        groups = [dag.task_group, *(g for g in dag.task_group.get_task_group_dict().values())]
        for group in groups:
            group.topological_sort()


def test_broken_specs_do_not_take_good_ones_down(mixed_specs: Path):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))

    # the broken greeter-typo keeps its rollback DAG (built from its id, store and connection);
    # half-written.json is not JSON: nothing can be taken from it
    assert sorted(bag.dag_ids) == sorted([*ALL_DAG_IDS, "greeter-typo__rollback"])
    assert "does not load" in bag.dags["greeter-typo__rollback"].doc_md
    [(file, message)] = bag.import_errors.items()
    assert file.endswith("handsoff_spec_errors.py")
    assert (
        f"{mixed_specs / 'greeter-typo.json'}: $.stages[0].tests[0].shrads: unknown key 'shrads'" in message
    )
    assert f"{mixed_specs / 'nested' / 'half-written.json'}: $: invalid JSON at line 3" in message


def test_task_runtime_builds_only_its_own_dag(mixed_specs: Path, monkeypatch: pytest.MonkeyPatch):
    from handsoff.factory.loader import load_dags, raise_spec_errors

    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "greeter-config")

    assert list(load_dags()) == ["greeter-config"]
    raise_spec_errors()  # validation of other specs is skipped while a task runs

    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "greeter-config__rollback")
    assert list(load_dags()) == ["greeter-config__rollback"]
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "greeter-typo__rollback")
    assert list(load_dags()) == ["greeter-typo__rollback"]  # a rollback of a broken spec runs too


@pytest.mark.slow
def test_real_dag_processor_and_rest_api_show_the_import_error(
    airflow_db: Path, mixed_specs: Path, tmp_path: Path
):
    port = free_port()
    env = api_env(port)
    with AirflowProcess(
        ["dag-processor", "--num-runs", "1"], env, tmp_path / "dag-processor.log"
    ) as processor:
        assert processor.wait(timeout=180) == 0, processor.tail()
    with AirflowProcess(["api-server", "--port", str(port)], env, tmp_path / "api.log") as api:
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=120, proc=api)
        client = api_client(f"http://127.0.0.1:{port}")
        errors = client.get("/api/v2/importErrors")["import_errors"]
        dags = {d["dag_id"]: d for d in client.get("/api/v2/dags?limit=100")["dags"]}

    assert {"greeter-app", "greeter-config"} <= set(dags)
    assert "greeter-typo" not in dags
    [error] = [e for e in errors if e["filename"].endswith("handsoff_spec_errors.py")]
    assert "greeter-typo.json: $.stages[0].tests[0].shrads: unknown key 'shrads'" in error["stack_trace"]
    assert "half-written.json: $: invalid JSON at line 3" in error["stack_trace"]
