"""``handsoff shard``: print the test files of one shard, for a test command such as

    pytest $(handsoff shard tests --junit previous-run.xml)

Shard index and total default to ``HANDSOFF_SHARD_INDEX`` / ``HANDSOFF_SHARD_TOTAL``, which every test
shard task exports. With a previous run's JUnit XML the split balances its durations; without one (a
first run, or a missing file) it is round robin. No Airflow import: the command must start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from fnmatch import fnmatch
from pathlib import Path

from handsoff.cli.registry import DEFAULT_TEST_PATTERNS as DEFAULT_PATTERNS
from handsoff.cli.registry import SHARD_INDEX_ENV as INDEX_ENV
from handsoff.cli.registry import SHARD_TOTAL_ENV as TOTAL_ENV
from handsoff.cli.registry import UsageError
from handsoff.model.sharding import junit_durations, split


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError as err:
        raise UsageError(f"${name} must be a whole number, not {value!r}") from err


def test_files(paths: list[Path], patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> list[str]:
    """Test files under `paths` (files are taken as given; folders are searched), as POSIX paths, sorted."""
    found: set[str] = set()
    for path in paths:
        if path.is_file():
            found.add(path.as_posix())
        elif path.is_dir():
            for file in path.rglob("*.py"):
                if any(fnmatch(file.name, pattern) for pattern in patterns):
                    found.add(file.as_posix())
        else:
            raise UsageError(f"no such file or folder: {path}")
    return sorted(found)


def shard(args: argparse.Namespace) -> int:
    """Print the files of shard `--index`, one a line; exit 0 even when the shard is empty."""
    index = args.index if args.index is not None else _env_int(INDEX_ENV)
    total = args.total if args.total is not None else _env_int(TOTAL_ENV)
    if index is None or total is None:
        raise UsageError(f"give --index and --total (or set ${INDEX_ENV} and ${TOTAL_ENV})")
    if total < 1 or not 0 <= index < total:
        raise UsageError(f"shard index {index} is not in 0..{total - 1}")
    files = test_files(args.paths or [Path("tests")], tuple(args.pattern or DEFAULT_PATTERNS))
    durations = None
    if args.junit is not None:
        try:
            durations = junit_durations(args.junit.read_bytes(), files)
        except (OSError, ValueError) as err:
            print(f"handsoff shard: {args.junit}: {err}; splitting round robin", file=sys.stderr)
    result = split(files, total, durations)
    if args.verbose:
        for number, (shard_files, seconds) in enumerate(
            zip(result.shards, result.expected_seconds, strict=True)
        ):
            print(
                f"shard {number}: {len(shard_files)} file(s), ~{seconds:.1f}s ({result.method})",
                file=sys.stderr,
            )
    for file in result.files(index):
        print(file)
    return 0
