"""The ``handsoff`` command line: one small function per subcommand, registered in ``COMMANDS``.

Subcommands that need Airflow must import it inside their function, so ``validate`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handsoff import settings
from handsoff.model import Pipeline, Stage, Target, Wave
from handsoff.settings import default_specs_dir
from handsoff.spec import SpecErrors, format_duration, load_paths, load_pipeline
from handsoff.spec.files import specs_root_for

Tree = tuple[str, list["Tree"]]
Run = Callable[[argparse.Namespace], int]
Argument = tuple[tuple[str, ...], dict[str, Any]]


class UsageError(Exception):
    """A bad command line that argparse cannot see (for example a missing path); exit status 2."""


@dataclass(frozen=True)
class Command:
    """A subcommand: its function, one-line help and argparse arguments as (flags, options) pairs."""

    run: Run
    help: str
    arguments: tuple[Argument, ...] = ()


COMMANDS: dict[str, Command] = {}


def argument(*flags: str, **options: Any) -> Argument:
    """One ``add_argument`` call, for ``command(...)``."""
    return flags, options


def command(name: str, help: str, *arguments: Argument) -> Callable[[Run], Run]:
    """Register the decorated function as subcommand `name`."""

    def register(run: Run) -> Run:
        COMMANDS[name] = Command(run, help, arguments)
        return run

    return register


# Options shared by the subcommands that talk to Airflow (defined before those modules are imported).
SPECS_ARG = argument("--specs", type=Path, metavar="DIR", help="specs folder (default: $HANDSOFF_SPECS_DIR)")
URL_ARG = argument(
    "--url",
    metavar="URL",
    help=f"Airflow URL (default: ${settings.AIRFLOW_URL_ENV} or {settings.DEFAULT_AIRFLOW_URL})",
)
USERNAME_ARG = argument(
    "--username", metavar="USER", help=f"Airflow user (default: ${settings.AIRFLOW_USERNAME_ENV})"
)


def _existing(paths: Sequence[Path]) -> list[Path]:
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    return list(paths)


@command(
    "validate",
    "check pipeline specs (files or folders; default: the specs folder) and print every error",
    argument("paths", nargs="*", type=Path, metavar="PATH", help="spec file or folder"),
)
def validate(args: argparse.Namespace) -> int:
    """Print every issue as ``FILE: JSON-PATH: message``; 1 when any, else 0."""
    result = load_paths(_existing(args.paths or [default_specs_dir()]))
    for issue in result.errors:
        print(issue)
    if result.errors:
        return 1
    print(f"{len(result.pipelines)} pipeline(s) valid")
    return 0


@command(
    "render",
    "print a resolved pipeline as a tree",
    argument("spec", type=Path, metavar="SPEC", help="spec file"),
)
def render(args: argparse.Namespace) -> int:
    """Print the pipeline tree, or its issues (exit 1)."""
    (spec,) = _existing([args.spec])
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per registered command."""
    parser = argparse.ArgumentParser(prog="handsoff", description="handsoff deployment pipelines")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, spec in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=spec.help, description=spec.help)
        for flags, options in spec.arguments:
            subparser.add_argument(*flags, **options)
        subparser.set_defaults(run=spec.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (2 for usage errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"handsoff {args.command}: error: {exc}", file=sys.stderr)
        return 2


# Subcommands that live in their own modules register themselves on import.
from handsoff import cli_ops, cli_rollback, cli_shard, cli_windows  # noqa: E402,F401

if __name__ == "__main__":
    # Run through the package module, so the subcommands registered above are in the same COMMANDS.
    from handsoff.cli import main as _main

    sys.exit(_main())
