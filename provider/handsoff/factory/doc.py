"""The DAG's doc (doc_md): what the pipeline deploys where, in what order, and how long it bakes."""

from __future__ import annotations

from handsoff.model.durations import format_duration
from handsoff.model.pipeline import AlarmRef, Approval, Pipeline, Stage, Target

_EXECUTION = {
    "superseded": "superseded: when runs wait, only the newest goes on; older ones end skipped",
    "queued": "queued: every run deploys, in the order they were queued",
}
_ROLLBACK = {
    "wave": "the failed wave's targets (or the failed stage's)",
    "all": "every target this run deployed, newest wave first",
}


def pipeline_doc(pipeline: Pipeline) -> str:
    """Markdown summary of a pipeline for the Airflow UI."""
    lines = [f"# {pipeline.id}", ""]
    if pipeline.description:
        lines += [pipeline.description, ""]
    lines += [
        f"- **Source:** `{pipeline.source.repo}` branch `{pipeline.source.branch}`",
        f"- **Owners:** {', '.join(pipeline.owners) or '-'}",
        f"- **Tags:** {', '.join(pipeline.tags) or '-'}",
        *([f"- **Commit link:** {pipeline.source.commit_url}"] if pipeline.source.commit_url else []),
        f"- **Build:** {' → '.join(s.name for s in pipeline.build.steps) or '-'}; "
        f"artifact `{pipeline.build.artifact}`",
        f"- **Spec:** `{pipeline.spec_file}`",
        f"- **Runs:** {_EXECUTION[pipeline.execution_mode]}",
        f"- **Rollback:** on a failed deploy, bake, alarm or test: {_ROLLBACK[pipeline.rollback_scope]} "
        f"(scope `{pipeline.rollback_scope}`, {pipeline.rollback_retries} retries); "
        "a rejected or unanswered approval deploys nothing more and rolls nothing back",
        *(f"- **Window `{name}`:** {window.summary()}" for name, window in pipeline.windows.items()),
        *(
            [f"- **Schedule:** a run at each opening of `{pipeline.schedule_window.name}`"]
            if pipeline.schedule_window
            else []
        ),
        "",
        "| stage | wave | targets | bake | alarms | approval |",
        "|---|---|---|---|---|---|",
    ]
    for stage in pipeline.stages:
        lines += _stage_rows(stage)
    return "\n".join(lines) + "\n"


def _stage_rows(stage: Stage) -> list[str]:
    rows = []
    if stage.approval:
        rows.append(f"| {stage.name} | (approval) | - | - | - | {_approval(stage.approval)} |")
    for wave in stage.waves:
        targets = ", ".join(f"{t.name} ({t.region})" if t.region else t.name for t in wave.targets)
        bake = format_duration(wave.bake) if wave.bake else "-"
        alarms = _alarms(wave.targets, wave.blockers)
        approval = _approval(wave.approval) if wave.approval else "-"
        rows.append(f"| {stage.name} | {wave.name} | {targets} | {bake} | {alarms} | {approval} |")
    for suite in stage.tests:
        rows.append(f"| {stage.name} | tests | {suite.name} ×{suite.shards} shards | - | - | - |")
    if stage.bake:
        rows.append(f"| {stage.name} | (stage) | - | {format_duration(stage.bake)} | - | - |")
    return rows


def _alarm_names(refs: tuple[AlarmRef, ...]) -> str:
    return ", ".join(f"`{ref.name}`" for ref in refs)


def _alarms(targets: tuple[Target, ...], blockers: tuple[AlarmRef, ...]) -> str:
    """Rollback alarms per target, then the wave's blockers (alarms that hold the wave before it deploys)."""
    parts = [f"rollback {t.name}: {_alarm_names(t.rollback_alarms)}" for t in targets if t.rollback_alarms]
    if blockers:
        parts.append(f"blockers: {_alarm_names(blockers)}")
    return "; ".join(parts).replace("|", "\\|") or "-"


def _approval(approval: Approval) -> str:
    """Who approves, within how long, and what they are asked to check."""
    text = f"{', '.join(approval.approvers)} within {format_duration(approval.timeout)}"
    if approval.instructions:
        text += f": {' '.join(approval.instructions.split())}"
    return text.replace("|", "\\|")
