"""Pipeline model → Airflow DAG: the only place that knows how a pipeline maps to tasks and groups.

source → build → [stage: [wave: window → blockers → deploy targets in parallel → bake] … → tests → bake] …
               → rollback_plan (ALL_DONE) → rollback.<stage>.<wave>, newest first → outcome (ONE_FAILED)

The rollback tasks live in their own top-level group: inside the wave groups they would make the
group graph cyclic (wave → rollback_plan → wave), which the UI cannot draw.

`schedule.window` makes the schedule a DeploymentWindowTimetable; a wave with a window starts with its
gate (`window`). Every pipeline has at most one active run: two runs never deploy a stage at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, TaskGroup, TriggerRule, cross_downstream

from handsoff.factory import naming
from handsoff.factory.doc import pipeline_doc
from handsoff.hooks.shell import DEFAULT_TIMEOUT
from handsoff.model.durations import format_duration
from handsoff.model.pipeline import (
    AlarmPolicy,
    Approval,
    BakeEvidence,
    Pipeline,
    Stage,
    Target,
    TestSuite,
    Wave,
    alarm_map,
)
from handsoff.operators.approval import DeploymentApprovalOperator
from handsoff.operators.build import BuildArtifactOperator
from handsoff.operators.deploy import DeployTargetOperator
from handsoff.operators.review import ReviewGateOperator
from handsoff.operators.rollback import RollbackPlanOperator, RollbackWaveOperator, RunOutcomeOperator
from handsoff.operators.shard import RunTestShardOperator
from handsoff.operators.source import ResolveSourceOperator
from handsoff.sensors.bake import BakeSensor
from handsoff.sensors.blocker import BlockerSensor
from handsoff.sensors.window import DeploymentWindowSensor
from handsoff.timetables.window import DeploymentWindowTimetable
from handsoff.utils.deferral import deferral_timeout

Tasks = Sequence[Any]  # operators or mapped operators


def build_dag(pipeline: Pipeline) -> DAG:
    """Create the DAG of one pipeline (dag_id = pipeline id)."""
    with DAG(
        dag_id=pipeline.id,
        description=pipeline.description or None,
        schedule=_schedule(pipeline),
        start_date=naming.START_DATE,
        catchup=False,
        max_active_runs=1,  # no two runs deploy to the same target at once
        tags=["handsoff", *pipeline.tags],
        default_args=naming.default_args(pipeline.owners),
        doc_md=pipeline_doc(pipeline),
        params=_params(pipeline),
    ) as dag:
        _PipelineGraph(pipeline).build()
    return dag


def _schedule(pipeline: Pipeline) -> DeploymentWindowTimetable | None:
    window = pipeline.schedule_window
    return DeploymentWindowTimetable(window.to_spec(), window.name) if window else None


def _params(pipeline: Pipeline) -> dict[str, Param]:
    params = {
        "commit": Param(
            None,
            type=["null", "string"],
            description=f"Commit to deploy (SHA or abbreviation); empty: {pipeline.source.branch} head",
        )
    }
    if pipeline.windows:
        params["override_window"] = Param(
            None,
            type=["null", "string"],
            description="Deploy outside the deployment windows: the reason (logged, kept on the gate tasks)",
        )
    return params


class _PipelineGraph:
    """Builds the tasks of one pipeline inside the current DAG context."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.common = {
            "pipeline": pipeline.id,
            "repo": pipeline.source.repo,
            "store": pipeline.artifact_store,
            "aws_conn_id": pipeline.aws_conn_id,
        }
        self.deploying = {**self.common, "commit": naming.RUN_COMMIT}  # tasks after `source`
        self.tasks: list[Any] = []  # every deployment task (rollback and outcome depend on them)
        self.waves: list[dict[str, Any]] = []  # for the rollback plan, in deployment order
        self.wave_groups: list[tuple[TaskGroup, Stage, Wave, list[dict[str, Any]]]] = []
        self.stage_tasks: dict[str, list[str]] = {}

    def build(self) -> None:
        source = ResolveSourceOperator(
            task_id=naming.SOURCE_TASK,
            branch=self.pipeline.source.branch,
            commit_key=naming.COMMIT_XCOM,
            execution_mode=self.pipeline.execution_mode,
            last_wave=[t.name for t in self.pipeline.stages[-1].waves[-1].targets],
            commit_url=self.pipeline.source.commit_url,
            **self.common,
        )
        build = BuildArtifactOperator(
            task_id=naming.BUILD_TASK,
            steps=[_step_args(s.name, s.command, s.timeout) for s in self.pipeline.build.steps],
            artifact=self.pipeline.build.artifact,
            coverage=_coverage_args(self.pipeline),
            execution_timeout=_build_timeout(self.pipeline),
            **self.deploying,
        )
        self.tasks.append(source)
        if self.pipeline.source.review.required:
            review = self.review()
            source >> review >> build
        else:
            source >> build
        self.tasks.append(build)
        ends: Tasks = [build]
        for stage in self.pipeline.stages:
            ends = self.stage(stage, after=ends)
        self.rollback()

    def review(self) -> ReviewGateOperator:
        """The review gate between source and build; production = the targets of the last wave."""
        review = self.pipeline.source.review
        task = ReviewGateOperator(
            task_id=naming.REVIEW_TASK,
            production_targets=[t.name for t in self.pipeline.stages[-1].waves[-1].targets],
            trailers=list(review.trailers),
            min_reviewers=review.min_reviewers,
            **self.deploying,
        )
        self.tasks.append(task)
        return task

    def stage(self, stage: Stage, after: Tasks) -> Tasks:
        with TaskGroup(stage.name, tooltip=f"stage {stage.name}"):
            if stage.approval is not None:
                targets = [t for wave in stage.waves for t in wave.targets]
                after = self.approval(stage.approval, _stage_where(stage), targets, after)
            ends, deployed = after, []
            for wave in stage.waves:
                deployed += wave.targets
                ends = self.wave(stage, wave, after=ends, in_scope=deployed)
            tests = [self.test(stage, suite) for suite in stage.tests]
            if tests:
                _link(ends, tests)
                ends = tests
            failure_tasks = [t.task_id for t in tests]
            if stage.bake is not None:
                bake = self.bake(stage.bake, stage.bake_evidence, stage.alarm_policy, deployed)
                _link(ends, [bake])
                ends = [bake]
                failure_tasks.append(bake.task_id)
            self.stage_tasks[stage.name] = failure_tasks
        return ends

    def wave(self, stage: Stage, wave: Wave, after: Tasks, in_scope: list[Target]) -> Tasks:
        policy = wave.alarm_policy
        with TaskGroup(
            wave.name, tooltip=f"wave {wave.name}: {', '.join(t.name for t in wave.targets)}"
        ) as group:
            if wave.approval is not None:
                after = self.approval(wave.approval, _wave_where(stage, wave), wave.targets, after)
            if wave.window is not None:
                gate = DeploymentWindowSensor(
                    task_id=naming.WINDOW_TASK,
                    window=wave.window.to_spec(),
                    window_name=wave.window.name,
                    first_task=naming.SOURCE_TASK,
                    execution_mode=self.pipeline.execution_mode,
                )
                _link(after, [gate])
                self.tasks.append(gate)
                after = [gate]
            if wave.blockers:
                blockers = BlockerSensor(
                    task_id=naming.BLOCKERS_TASK,
                    alarms=alarm_map(wave.blockers),
                    timeout_seconds=int(policy.blocker_timeout.total_seconds()),
                    aws_conn_id=self.pipeline.aws_conn_id,
                    poll_seconds=policy.poll.total_seconds(),
                    insufficient_data=policy.insufficient_data,
                )
                _link(after, [blockers])
                self.tasks.append(blockers)
                after = [blockers]
            deploys = [self.deploy(stage, wave, target) for target in wave.targets]
            _link(after, deploys)
            ends: Tasks = deploys
            if wave.bake is not None:
                bake = self.bake(wave.bake, wave.bake_evidence, policy, in_scope)
                _link(deploys, [bake])
                ends = [bake]
        targets = [
            {"fields": dict(t.fields), "deploy": t.deployer.to_dict(), "deploy_task": d.task_id}
            for t, d in zip(wave.targets, deploys, strict=True)
        ]
        self.wave_groups.append((group, stage, wave, targets))
        self.waves.append(
            {
                "stage": stage.name,
                "wave": wave.name,
                "rollback_task": naming.rollback_task(stage.name, wave.name),
                "failure_tasks": [d.task_id for d in deploys]
                + ([ends[0].task_id] if ends is not deploys else []),
            }
        )
        return ends

    def approval(self, approval: Approval, where: str, targets: Sequence[Target], after: Tasks) -> Tasks:
        """The human approval (task `approval`, current group) in front of `where`; no rollback cause."""
        task = DeploymentApprovalOperator(
            task_id=naming.APPROVAL_TASK,
            pipeline=self.pipeline.id,
            commit=naming.RUN_COMMIT,
            store=self.pipeline.artifact_store,
            aws_conn_id=self.pipeline.aws_conn_id,
            where=where,
            approvers=list(approval.approvers),
            instructions=approval.instructions,
            deploys=[_where(t) for t in targets],
            timeout=approval.timeout,
        )
        _link(after, [task])
        self.tasks.append(task)  # the rollback plan waits for it and the outcome fails the run on it
        return [task]

    def deploy(self, stage: Stage, wave: Wave, target: Target) -> DeployTargetOperator:
        approvals = [(_stage_where(stage), stage.approval), (_wave_where(stage, wave), wave.approval)]
        task = DeployTargetOperator(
            task_id=naming.deploy_task(target.name),
            stage=stage.name,
            wave=wave.name,
            approvals=[{"where": w, "approvers": list(a.approvers)} for w, a in approvals if a is not None],
            target=dict(target.fields),
            deploy=target.deployer.to_dict(),
            alarms=alarm_map(target.rollback_alarms),
            poll_seconds=wave.alarm_policy.poll.total_seconds(),
            insufficient_data=wave.alarm_policy.insufficient_data,
            execution_timeout=naming.DEPLOY_TIMEOUT,
            **self.deploying,
        )
        self.tasks.append(task)
        return task

    def bake(
        self, duration: timedelta, evidence: BakeEvidence | None, policy: AlarmPolicy, in_scope: list[Target]
    ) -> BakeSensor:
        task = BakeSensor(
            task_id=naming.BAKE_TASK,
            bake_seconds=int(duration.total_seconds()),
            alarms=alarm_map(ref for t in in_scope for ref in t.rollback_alarms) or None,
            aws_conn_id=self.pipeline.aws_conn_id,
            poll_seconds=policy.poll.total_seconds(),
            insufficient_data=policy.insufficient_data,
            datapoints=_datapoints(evidence, in_scope),
            max_seconds=int(evidence.max.total_seconds()) if evidence else None,
            pipeline=self.pipeline.id,
            store=self.pipeline.artifact_store,
            commit=naming.RUN_COMMIT,
        )
        # a short bake waits in the worker: its whole wait counts towards the execution timeout
        task.execution_timeout = max(
            naming.TASK_TIMEOUT, deferral_timeout(timedelta(seconds=task.max_bake_seconds))
        )
        self.tasks.append(task)
        return task

    def test(self, stage: Stage, suite: TestSuite) -> Any:
        task = RunTestShardOperator.partial(
            task_id=naming.test_task(suite.name),
            stage=stage.name,
            test=suite.name,
            command=suite.command,
            shard_total=suite.shards,
            timeout=format_duration(suite.timeout) if suite.timeout else None,
            execution_timeout=deferral_timeout(suite.timeout or DEFAULT_TIMEOUT),
            **self.deploying,
        ).expand(shard_index=list(range(suite.shards)))
        self.tasks.append(task)
        return task

    def rollback(self) -> None:
        """The plan (after everything), one rollback task per wave (newest first), the watcher."""
        plan = {"scope": self.pipeline.rollback_scope, "waves": self.waves, "stage_tasks": self.stage_tasks}
        outcome = RunOutcomeOperator(task_id=naming.OUTCOME_TASK, trigger_rule=TriggerRule.ONE_FAILED)
        planner = RollbackPlanOperator(
            task_id=naming.ROLLBACK_PLAN_TASK,
            plan=plan,
            outcome_task=outcome.task_id,
            trigger_rule=TriggerRule.ALL_DONE,
            pipeline=self.pipeline.id,
            commit=naming.RUN_COMMIT,
            store=self.pipeline.artifact_store,
            aws_conn_id=self.pipeline.aws_conn_id,
        )
        self.tasks >> planner
        previous = None
        rollbacks = []
        with TaskGroup(
            naming.ROLLBACK_GROUP, tooltip="automatic rollback, newest wave first (run only on failure)"
        ):
            stage_groups: dict[str, TaskGroup] = {}
            for index in reversed(range(len(self.wave_groups))):
                _, stage, wave, targets = self.wave_groups[index]
                if stage.name not in stage_groups:
                    stage_groups[stage.name] = TaskGroup(stage.name, tooltip=f"roll back stage {stage.name}")
                task = RollbackWaveOperator(
                    task_id=wave.name,
                    task_group=stage_groups[stage.name],
                    stage=stage.name,
                    wave=wave.name,
                    targets=targets,
                    plan=plan,
                    index=index,
                    trigger_rule=TriggerRule.ALL_DONE,
                    retries=self.pipeline.rollback_retries,
                    retry_delay=self.pipeline.rollback_retry_delay,
                    retry_exponential_backoff=2.0,
                    execution_timeout=naming.DEPLOY_TIMEOUT,
                    **self.deploying,
                )
                planner >> task
                if previous is not None:
                    previous >> task
                previous = task
                rollbacks.append(task)
        [*self.tasks, planner, *rollbacks] >> outcome


def _link(upstream: Tasks, downstream: Tasks) -> None:
    if len(upstream) == 1 or len(downstream) == 1:
        for up in upstream:
            up >> list(downstream)
    else:
        cross_downstream(list(upstream), list(downstream))


def _where(target: Target) -> str:
    """A target as the approval's body lists it: name, region, deployer."""
    region = f" in {target.region}" if target.region else ""
    return f"`{target.name}`{region} ({target.deployer.type})"


def _datapoints(evidence: BakeEvidence | None, in_scope: list[Target]) -> dict[str, Any] | None:
    if evidence is None:
        return None
    region = evidence.region or next((t.region for t in in_scope if t.region), None)
    return {
        "namespace": evidence.namespace,
        "metric": evidence.metric,
        "dimensions": dict(evidence.dimensions),
        "count": evidence.count,
        "region": region or "",
    }


def _step_args(name: str, command: str, timeout: Any) -> dict[str, Any]:
    return {"name": name, "command": command, "timeout": format_duration(timeout) if timeout else None}


def _build_timeout(pipeline: Pipeline) -> timedelta:
    """Every build step's timeout (the default where a step sets none), the coverage run's, a margin."""
    steps = [step.timeout or DEFAULT_TIMEOUT for step in pipeline.build.steps]
    coverage = [DEFAULT_TIMEOUT] if pipeline.build.coverage else []
    return deferral_timeout(sum(steps + coverage, timedelta(0)))


def _coverage_args(pipeline: Pipeline) -> dict[str, Any] | None:
    cov = pipeline.build.coverage
    if cov is None:
        return None
    return {"command": cov.command, "report": cov.report, "min_percent": cov.min_percent}


def _stage_where(stage: Stage) -> str:
    """What a stage's approval approves, as its task asks and the deploys behind it check."""
    return f"stage {stage.name}"


def _wave_where(stage: Stage, wave: Wave) -> str:
    """What a wave's approval approves, as its task asks and the deploys behind it check."""
    return f"wave {stage.name}.{wave.name}"
