"""`handsoff render SPEC`: the resolved pipeline as a tree (stages, waves, targets, tests, bakes)."""

from __future__ import annotations

import argparse

from handsoff.cli.validate import existing
from handsoff.model.durations import format_duration
from handsoff.model.pipeline import Pipeline, Stage, Target, Wave
from handsoff.spec import SpecErrors, load_pipeline
from handsoff.spec.files import specs_root_for

Tree = tuple[str, list["Tree"]]


def render(args: argparse.Namespace) -> int:
    """Print the pipeline tree, or its issues (exit 1)."""
    (spec,) = existing([args.spec])
    try:
        pipeline = load_pipeline(spec, specs_root_for(spec))
    except SpecErrors as exc:
        for issue in exc.issues:
            print(issue)
        return 1
    print("\n".join(render_tree(pipeline_tree(pipeline))))
    return 0


def pipeline_tree(pipeline: Pipeline) -> Tree:
    """The pipeline as (label, children) nodes: build, then stages → waves → targets."""
    source = pipeline.source
    label = f"{pipeline.id}  (source {source.repo}@{source.branch})"
    return label, [(_build_label(pipeline), []), *(_stage_tree(stage) for stage in pipeline.stages)]


def _build_label(pipeline: Pipeline) -> str:
    build = pipeline.build
    parts = [" → ".join(step.name for step in build.steps)] if build.steps else []
    if build.coverage is not None:
        parts.append(f"coverage ≥ {build.coverage.min_percent:g}%")
    parts.append(f"artifact {build.artifact}")
    return "build: " + ", ".join(parts)


def _stage_tree(stage: Stage) -> Tree:
    children = [_wave_tree(wave) for wave in stage.waves]
    if stage.tests:
        suites = (f"{t.name} ×{t.shards} shards" if t.shards > 1 else t.name for t in stage.tests)
        children.append((f"tests: {', '.join(suites)}", []))
    if stage.bake is not None:
        children.append((f"bake {format_duration(stage.bake)}", []))
    return f"stage {stage.name}", children


def _wave_tree(wave: Wave) -> Tree:
    children: list[Tree] = [(_target_label(target), []) for target in wave.targets]
    if wave.bake is not None:
        children.append((f"bake {format_duration(wave.bake)}", []))
    return f"wave {wave.name}", children


def _target_label(target: Target) -> str:
    region = f" ({target.region})" if target.region else ""
    return f"target {target.name}{region} deploy={target.deployer.type}"


def render_tree(tree: Tree) -> list[str]:
    """Lines of a (label, children) tree drawn with box characters."""
    label, children = tree
    return [label, *_branches(children, "")]


def _branches(children: list[Tree], prefix: str) -> list[str]:
    lines = []
    for index, (label, grandchildren) in enumerate(children):
        last = index == len(children) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{label}")
        lines += _branches(grandchildren, prefix + ("    " if last else "│   "))
    return lines
