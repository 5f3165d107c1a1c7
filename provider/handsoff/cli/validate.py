"""`handsoff validate [PATH…]`: the same checks as the DAG loader, every problem with file and JSON path."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from handsoff.cli.registry import UsageError
from handsoff.settings import default_specs_dir
from handsoff.spec import load_paths


def existing(paths: Sequence[Path]) -> list[Path]:
    """`paths`, or UsageError naming those that do not exist."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    return list(paths)


def validate(args: argparse.Namespace) -> int:
    """Print every issue as ``FILE: JSON-PATH: message``; 1 when any, else 0."""
    result = load_paths(existing(args.paths or [default_specs_dir()]))
    for issue in result.errors:
        print(issue)
    if result.errors:
        return 1
    print(f"{len(result.pipelines)} pipeline(s) valid")
    return 0
