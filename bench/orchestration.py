"""Benchmark 2, orchestration overhead: one pipeline run end to end on `airflow standalone` (LocalExecutor).

The issue's example pipeline with zero bakes and `true` for every command (build steps, deploys, rollbacks,
tests) runs as handsoff builds it (source resolution, one build and artifact store, deploys through the
ledger, test shards in checkouts, rollback plan, outcome watcher), and the same DAG shape written by hand
with BashOperator `true` (same task ids, groups, dependencies, mapped shards, trigger rules; the rollback
plan is a BranchPythonOperator choosing only the watcher, as handsoff's does when nothing failed). Both DAGs
live on one Airflow and run one after the other, alternating, so they share the machine's load.

Reported: the wall time of a run (dag run start → end); per stage, the time from the end of what came before
(the build, or the previous stage) to the end of the stage's last task, so that stages add up and the
scheduling gaps between them count; and the difference per stage: the seconds handsoff adds to a stage.
Writes bench/out/orchestration.json. Environment: BENCH_ORCH_ROUNDS (default 2), BENCH_ORCH_PORT (8791).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_local import Standalone
from common import REPO, exit_on_sigterm, machine, median, out_dir, say, versions, write_result
from generate import ISSUE_EXAMPLE, SERVICE_TEMPLATE, write_specs

HANDSOFF_DAG = "orch-handsoff"
BASH_DAG = "orch-bash"
RUN_TIMEOUT_S = 300
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def git_repo(root: Path) -> Path:
    """A bare repository holding one commit with the file the build stores as its artifact."""
    bare, work = root / "app.git", root / "app-work"
    shutil.rmtree(root, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, **GIT_ENV}
    (work / "artifact.txt").write_text("the artifact\n")
    for args in (
        ["init", "-q", "--bare", "-b", "main", str(bare)],
        ["-C", str(work), "init", "-q", "-b", "main"],
        ["-C", str(work), "add", "-A"],
        ["-C", str(work), "commit", "-q", "-m", "bench"],
        ["-C", str(work), "push", "-q", str(bare), "HEAD:main"],
    ):
        subprocess.run(["git", *args], check=True, env=env, capture_output=True)
    return bare


def true_spec(pipeline: str, repo: Path, store: Path) -> dict[str, Any]:
    """The issue's example with no bakes, no coverage gate and `true` for every command."""
    spec = copy.deepcopy(ISSUE_EXAMPLE)
    spec.update(pipeline=pipeline, source={"repo": str(repo), "branch": "main"})
    spec["artifacts"] = {"store": store.as_uri()}
    spec["deploy"] = {"type": "command", "deploy": "true", "rollback": "true"}
    spec["build"] = {
        "steps": [{"name": s["name"], "command": "true"} for s in ISSUE_EXAMPLE["build"]["steps"]],
        "artifact": "artifact.txt",
    }
    for stage in spec["stages"]:
        stage.pop("bake", None)
        for suite in stage.get("tests", []):
            suite["command"] = "true"
        for wave in stage["waves"]:
            wave.pop("bake", None)
    return spec


def bash_source(dag: Any, dag_id: str) -> str:
    """The DAG file of the same shape with BashOperator `true` (written from handsoff's DAG, not by hand)."""
    from airflow.providers.standard.operators.branch import BaseBranchOperator
    from airflow.sdk import TaskGroup
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    body: list[str] = []
    names: dict[str, str] = {}

    def emit(group: Any, indent: str) -> None:
        for child in group.children.values():
            if isinstance(child, TaskGroup):
                body.append(f"{indent}with TaskGroup({child._group_id!r}):")
                emit(child, indent + "    ")
                continue
            var = names[child.task_id] = f"t{len(names)}"
            local = child.task_id.rsplit(".", 1)[-1]
            rule = str(
                child.trigger_rule.value if hasattr(child.trigger_rule, "value") else child.trigger_rule
            )
            if isinstance(child, MappedOperator):
                shards = len(next(iter(child.expand_input.value.values())))
                env = [{"SHARD": str(i)} for i in range(shards)]
                body.append(
                    f"{indent}{var} = BashOperator.partial(task_id={local!r}, bash_command='true')"
                    f".expand(env={env!r})"
                )
            elif isinstance(child, BaseBranchOperator):
                body.append(
                    f"{indent}{var} = BranchPythonOperator(task_id={local!r}, python_callable=lambda: "
                    f"[{child.outcome_task!r}], trigger_rule={rule!r})"
                )
            else:
                command = "exit 1" if rule == "one_failed" else "true"
                body.append(
                    f"{indent}{var} = BashOperator(task_id={local!r}, bash_command={command!r}, "
                    f"trigger_rule={rule!r})"
                )

    emit(dag.task_group, "    ")
    for task in dag.tasks:
        upstream = [names[t] for t in sorted(task.upstream_task_ids)]
        if upstream:
            body.append(f"    [{', '.join(upstream)}] >> {names[task.task_id]}")
    return "\n".join(
        [
            f'"""{dag.dag_id} written with BashOperator `true`: the orchestration benchmark\'s baseline."""',
            "",
            "from datetime import UTC, datetime",
            "",
            "from airflow.providers.standard.operators.bash import BashOperator",
            "from airflow.providers.standard.operators.python import BranchPythonOperator",
            "from airflow.sdk import DAG, TaskGroup",
            "",
            f"with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC),",
            "         catchup=False,",
            "         max_active_runs=1, default_args={'retries': 0}):",
            *body,
            "",
        ]
    )


def _time(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def run_figures(api: Any, dag_id: str, run_id: str, triggered: float) -> dict[str, Any]:
    """Wall time of a run and per stage, from the API's run and task instance dates."""
    run = api.wait_for_run(dag_id, run_id, RUN_TIMEOUT_S)
    finished = time.time()
    instances = api.task_instances(dag_id, run_id)
    ran = [ti for ti in instances if ti["start_date"] and ti["end_date"] and ti["state"] == "success"]
    stages: dict[str, list[dict[str, Any]]] = {}
    for ti in ran:
        head = ti["task_id"].split(".", 1)[0]
        if "." in ti["task_id"]:
            stages.setdefault(head, []).append(ti)
    # A stage's share of the run: from the end of what came before it (the build, or the previous stage)
    # to the end of its last task, so the stages add up and scheduling gaps between them are counted.
    ends = {stage: max(_time(t["end_date"]) for t in tis) for stage, tis in stages.items()}
    build_end = max(_time(ti["end_date"]) for ti in ran if ti["task_id"] == "build")
    spans, previous = {}, build_end
    for stage in sorted(ends, key=ends.get):
        spans[stage], previous = ends[stage] - previous, ends[stage]
    start, end = _time(run["start_date"]), _time(run["end_date"])
    return {
        "state": run["state"],
        "run_wall_s": round(end - start, 2),
        "trigger_to_end_s": round(finished - triggered, 2),
        "stage_s": {k: round(v, 2) for k, v in spans.items()},
        "source_and_build_s": round(build_end - start, 2),
        "after_last_stage_s": round(end - previous, 2),
        "task_instances": len(instances),
        "ran": len(ran),
        "states": {
            s: sum(1 for ti in instances if ti["state"] == s) for s in {ti["state"] for ti in instances}
        },
        "task_s": {
            f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: round(
                _time(ti["end_date"]) - _time(ti["start_date"]), 2
            )
            for ti in ran
        },
    }


def main() -> None:
    exit_on_sigterm()
    started = time.monotonic()
    rounds = int(os.environ.get("BENCH_ORCH_ROUNDS", "2"))
    base = out_dir("orchestration")
    repo = git_repo(base / "git")
    specs, dags, store = base / "specs", base / "dags", base / "artifacts"
    for folder in (specs, dags, store):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    write_specs(specs, [true_spec(HANDSOFF_DAG, repo, store)], SERVICE_TEMPLATE)
    shutil.copy(REPO / "dags" / "handsoff_pipelines.py", dags)
    from handsoff.factory.pipeline_dag import build_dag
    from handsoff.spec import load_pipeline

    dag = build_dag(load_pipeline(specs / f"{HANDSOFF_DAG}.json", specs))
    (dags / "orch_bash.py").write_text(bash_source(dag, BASH_DAG))
    env = {"HANDSOFF_SPECS_DIR": str(specs), "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300"}
    port = int(os.environ.get("BENCH_ORCH_PORT", "8791"))
    figures: dict[str, list[dict[str, Any]]] = {HANDSOFF_DAG: [], BASH_DAG: []}
    with Standalone(base / "airflow-home", dags, port, env) as airflow:
        loaded = airflow.wait_for_dags({HANDSOFF_DAG, BASH_DAG}, timeout=180)
        say(f"both DAGs loaded {loaded:.0f}s after Airflow was healthy")
        for dag_id in (BASH_DAG, HANDSOFF_DAG):  # warm-up: the first run of a DAG pays one-off costs
            airflow.api.trigger(dag_id, "warm-up")
            say(f"{dag_id} warm-up: {airflow.api.wait_for_run(dag_id, 'warm-up', RUN_TIMEOUT_S)['state']}")
        for round_ in range(rounds):
            order = (BASH_DAG, HANDSOFF_DAG) if round_ % 2 == 0 else (HANDSOFF_DAG, BASH_DAG)
            for dag_id in order:
                run_id = f"bench-{round_}"
                triggered = time.time()
                airflow.api.trigger(dag_id, run_id)
                result = run_figures(airflow.api, dag_id, run_id, triggered)
                figures[dag_id].append(result)
                say(
                    f"{dag_id} round {round_ + 1}: {result['state']} in {result['run_wall_s']:.1f}s "
                    f"{result['stage_s']}"
                )
                if result["state"] != "success":
                    raise SystemExit(f"{dag_id} run {run_id} failed: {json.dumps(result['states'])}")
    stages = list(figures[HANDSOFF_DAG][0]["stage_s"])
    summary = {
        dag_id: {
            "median_run_wall_s": round(median(r["run_wall_s"] for r in runs), 2),
            "median_stage_s": {s: round(median(r["stage_s"][s] for r in runs), 2) for s in stages},
            "median_source_and_build_s": round(median(r["source_and_build_s"] for r in runs), 2),
            "median_after_last_stage_s": round(median(r["after_last_stage_s"] for r in runs), 2),
        }
        for dag_id, runs in figures.items()
    }
    hs, bash = summary[HANDSOFF_DAG], summary[BASH_DAG]
    summary["overhead"] = {
        "run_s": round(hs["median_run_wall_s"] - bash["median_run_wall_s"], 2),
        "ratio": round(hs["median_run_wall_s"] / bash["median_run_wall_s"], 2),
        "per_stage_s": {s: round(hs["median_stage_s"][s] - bash["median_stage_s"][s], 2) for s in stages},
        "per_stage_mean_s": round(
            sum(hs["median_stage_s"][s] - bash["median_stage_s"][s] for s in stages) / len(stages), 2
        ),
    }
    write_result(
        "orchestration",
        {
            "machine": machine(),
            "versions": versions(),
            "rounds": rounds,
            "tasks": len(dag.tasks),
            "summary": summary,
            "runs": figures,
            "elapsed_s": round(time.monotonic() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
