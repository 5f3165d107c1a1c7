"""Pipeline model → Airflow DAG: the only place that knows how a pipeline maps to tasks and groups.

source → build → [stage: [wave: deploy targets in parallel → bake] … → tests (shards) → bake] …
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Param, TaskGroup, cross_downstream

from handsoff.model import Pipeline, Stage, TestSuite, Wave
from handsoff.operators.build import BuildArtifactOperator
from handsoff.operators.deploy import DeployTargetOperator
from handsoff.operators.shard import RunTestShardOperator
from handsoff.operators.source import ResolveSourceOperator
from handsoff.pipeline_doc import pipeline_doc
from handsoff.sensors.bake import BakeSensor
from handsoff.spec.durations import format_duration

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
Tasks = Sequence[Any]  # operators or mapped operators


def build_dag(pipeline: Pipeline) -> DAG:
    """Create the DAG of one pipeline (dag_id = pipeline id)."""
    with DAG(
        dag_id=pipeline.id,
        description=pipeline.description or None,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,  # no two runs deploy to the same target at once
        tags=["handsoff", *pipeline.tags],
        default_args={"owner": ", ".join(pipeline.owners) or "handsoff", "retries": 0},
        doc_md=pipeline_doc(pipeline),
        params={
            "commit": Param(
                None,
                type=["null", "string"],
                description=f"Commit to deploy (SHA or abbreviation); empty: {pipeline.source.branch} head",
            )
        },
    ) as dag:
        common = _common_args(pipeline)
        source = ResolveSourceOperator(
            task_id="source", repo=pipeline.source.repo, branch=pipeline.source.branch
        )
        build = BuildArtifactOperator(
            task_id="build",
            steps=[_step_args(s.name, s.command, s.timeout) for s in pipeline.build.steps],
            artifact=pipeline.build.artifact,
            coverage=_coverage_args(pipeline),
            **common,
        )
        source >> build
        ends: Tasks = [build]
        for stage in pipeline.stages:
            ends = _stage(stage, common, after=ends)
    return dag


def _stage(stage: Stage, common: dict[str, Any], after: Tasks) -> Tasks:
    with TaskGroup(stage.name, tooltip=f"stage {stage.name}"):
        ends = after
        for wave in stage.waves:
            ends = _wave(stage, wave, common, after=ends)
        tests = [_test(stage, suite, common) for suite in stage.tests]
        if tests:
            _link(ends, tests)
            ends = tests
        if stage.bake:
            bake = BakeSensor(task_id="bake", bake_seconds=int(stage.bake.total_seconds()))
            _link(ends, [bake])
            ends = [bake]
    return ends


def _wave(stage: Stage, wave: Wave, common: dict[str, Any], after: Tasks) -> Tasks:
    with TaskGroup(wave.name, tooltip=f"wave {wave.name}: {', '.join(t.name for t in wave.targets)}"):
        deploys = [
            DeployTargetOperator(
                task_id=f"deploy_{target.name}",
                stage=stage.name,
                wave=wave.name,
                target=dict(target.fields),
                deploy=target.deployer.to_dict(),
                **common,
            )
            for target in wave.targets
        ]
        _link(after, deploys)
        if not wave.bake:
            return deploys
        bake = BakeSensor(task_id="bake", bake_seconds=int(wave.bake.total_seconds()))
        _link(deploys, [bake])
        return [bake]


def _test(stage: Stage, suite: TestSuite, common: dict[str, Any]) -> Any:
    return RunTestShardOperator.partial(
        task_id=f"test_{suite.name}",
        stage=stage.name,
        test=suite.name,
        command=suite.command,
        shard_total=suite.shards,
        timeout=format_duration(suite.timeout) if suite.timeout else None,
        **common,
    ).expand(shard_index=list(range(suite.shards)))


def _link(upstream: Tasks, downstream: Tasks) -> None:
    if len(upstream) == 1 or len(downstream) == 1:
        for up in upstream:
            up >> list(downstream)
    else:
        cross_downstream(list(upstream), list(downstream))


def _common_args(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "pipeline": pipeline.id,
        "repo": pipeline.source.repo,
        "store": pipeline.artifact_store,
        "aws_conn_id": pipeline.aws_conn_id,
    }


def _step_args(name: str, command: str, timeout: Any) -> dict[str, Any]:
    return {"name": name, "command": command, "timeout": format_duration(timeout) if timeout else None}


def _coverage_args(pipeline: Pipeline) -> dict[str, Any] | None:
    cov = pipeline.build.coverage
    if cov is None:
        return None
    return {"command": cov.command, "report": cov.report, "min_percent": cov.min_percent}


__all__ = ["build_dag"]
