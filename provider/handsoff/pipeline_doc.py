"""The DAG's doc (doc_md): what the pipeline deploys where, in what order, and how long it bakes."""

from __future__ import annotations

from handsoff.model import Pipeline, Stage
from handsoff.spec.durations import format_duration

_EXECUTION = {
    "superseded": "superseded: when runs wait, only the newest goes on; older ones end skipped",
    "queued": "queued: every run deploys, in the order they were queued",
}


def pipeline_doc(pipeline: Pipeline) -> str:
    """Markdown summary of a pipeline for the Airflow UI."""
    lines = [f"# {pipeline.id}", ""]
    if pipeline.description:
        lines += [pipeline.description, ""]
    lines += [
        f"- **Source:** `{pipeline.source.repo}` branch `{pipeline.source.branch}`",
        f"- **Owners:** {', '.join(pipeline.owners) or '-'}",
        f"- **Build:** {' → '.join(s.name for s in pipeline.build.steps) or '-'}; "
        f"artifact `{pipeline.build.artifact}`",
        f"- **Spec:** `{pipeline.spec_file}`",
        f"- **Runs:** {_EXECUTION[pipeline.execution_mode]}",
        *(f"- **Window `{name}`:** {window.summary()}" for name, window in pipeline.windows.items()),
        *(
            [f"- **Schedule:** a run at each opening of `{pipeline.schedule_window.name}`"]
            if pipeline.schedule_window
            else []
        ),
        "",
        "| stage | wave | targets | bake |",
        "|---|---|---|---|",
    ]
    for stage in pipeline.stages:
        lines += _stage_rows(stage)
    return "\n".join(lines) + "\n"


def _stage_rows(stage: Stage) -> list[str]:
    rows = []
    for wave in stage.waves:
        targets = ", ".join(f"{t.name} ({t.region})" if t.region else t.name for t in wave.targets)
        bake = format_duration(wave.bake) if wave.bake else "-"
        rows.append(f"| {stage.name} | {wave.name} | {targets} | {bake} |")
    for suite in stage.tests:
        rows.append(f"| {stage.name} | tests | {suite.name} ×{suite.shards} shards | - |")
    if stage.bake:
        rows.append(f"| {stage.name} | (stage) | - | {format_duration(stage.bake)} |")
    return rows
