"""Splitting a test suite's files into shards: balanced by a previous run's durations, else round robin.

Pure functions (no Airflow), used by ``handsoff shard``. Every shard of a suite computes the same split
independently from the same inputs (the file list and the previous run's JUnit XML), so the split is
deterministic: ties are broken by file name and shard index, never by chance.

Balanced split: longest processing time first (each file, longest first, goes to the shard with the least
work so far), which keeps the longest shard within 4/3 of the best possible split. A file the XML does
not know (a new test file) counts as the median known file. Without any known duration the split is round
robin over the sorted file names.
"""

from __future__ import annotations

import heapq
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

BALANCED = "durations"
ROUND_ROBIN = "round-robin"


@dataclass(frozen=True)
class Split:
    """The files of each shard (sorted), the seconds each shard is expected to take, and how it was split."""

    shards: tuple[tuple[str, ...], ...]
    expected_seconds: tuple[float, ...]
    method: str

    def files(self, index: int) -> tuple[str, ...]:
        """The files of shard `index` (0-based)."""
        return self.shards[index]


def _module_names(file: str) -> list[str]:
    """Dotted names JUnit may use for `file` (pytest's classname), longest first: a.b.test_x, b.test_x, ..."""
    parts = PurePosixPath(file).with_suffix("").parts
    parts = tuple(p for p in parts if p not in (".", ""))
    return [".".join(parts[i:]) for i in range(len(parts))]


def _file_index(files: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """A file by its path (and path suffixes) and by its dotted module names; ambiguous keys dropped."""
    by_path: dict[str, str | None] = {}
    by_module: dict[str, str | None] = {}
    for file in files:
        parts = PurePosixPath(file).parts
        for i in range(len(parts)):
            key = "/".join(parts[i:])
            by_path[key] = file if by_path.get(key, file) == file else None
        for name in _module_names(file):
            by_module[name] = file if by_module.get(name, file) == file else None
    return (
        {k: v for k, v in by_path.items() if v is not None},
        {k: v for k, v in by_module.items() if v is not None},
    )


def _file_of(case: ET.Element, by_path: Mapping[str, str], by_module: Mapping[str, str]) -> str | None:
    """The test file of a <testcase>: its `file` attribute, else the longest module prefix of `classname`."""
    file = case.get("file")
    if file:
        return by_path.get(PurePosixPath(file.replace("\\", "/")).as_posix().removeprefix("./"))
    parts = (case.get("classname") or "").split(".")
    for end in range(len(parts), 0, -1):
        found = by_module.get(".".join(parts[:end]))
        if found:
            return found
    return None


def junit_durations(xml_text: str | bytes, files: Sequence[str]) -> dict[str, float]:
    """Seconds per test file of `files` in a JUnit XML report (test cases of other files are ignored).

    Raises ValueError when the text is not XML.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as err:
        raise ValueError(f"not a JUnit XML report: {err}") from err
    by_path, by_module = _file_index(files)
    durations: dict[str, float] = {}
    for case in root.iter("testcase"):
        file = _file_of(case, by_path, by_module)
        if file is None:
            continue
        try:
            seconds = max(0.0, float(case.get("time") or 0))
        except ValueError:
            seconds = 0.0
        durations[file] = durations.get(file, 0.0) + seconds
    return durations


def round_robin(files: Sequence[str], total: int) -> list[list[str]]:
    """File i of the sorted names goes to shard i mod `total`."""
    _check_total(total)
    shards: list[list[str]] = [[] for _ in range(total)]
    for i, file in enumerate(sorted(set(files))):
        shards[i % total].append(file)
    return shards


def balanced(durations: Mapping[str, float], total: int) -> list[list[str]]:
    """Longest processing time first: each file, longest first, to the shard with the least seconds so far."""
    _check_total(total)
    shards: list[list[str]] = [[] for _ in range(total)]
    heap = [(0.0, index) for index in range(total)]
    for file in sorted(durations, key=lambda f: (-durations[f], f)):
        load, index = heapq.heappop(heap)
        shards[index].append(file)
        heapq.heappush(heap, (load + durations[file], index))
    return [sorted(files) for files in shards]


def split(files: Sequence[str], total: int, durations: Mapping[str, float] | None = None) -> Split:
    """Shards of `files`: balanced by `durations` (seconds per file) when any is known, else round robin."""
    _check_total(total)
    unique = sorted(set(files))
    known = {f: float(durations[f]) for f in unique if durations and f in durations}
    if not known:
        shards = round_robin(unique, total)
        return Split(tuple(tuple(s) for s in shards), tuple(0.0 for _ in shards), ROUND_ROBIN)
    guess = statistics.median(known.values())
    estimated = {f: known.get(f, guess) for f in unique}
    shards = balanced(estimated, total)
    return Split(tuple(tuple(s) for s in shards), tuple(load(s, estimated) for s in shards), BALANCED)


def load(files: Iterable[str], durations: Mapping[str, float]) -> float:
    """Seconds of one shard: the sum of its files' durations (unknown files count 0)."""
    return sum(durations.get(f, 0.0) for f in files)


def makespan(shards: Iterable[Iterable[str]], durations: Mapping[str, float]) -> float:
    """Seconds until the last shard finishes, shards running in parallel."""
    return max((load(s, durations) for s in shards), default=0.0)


def _check_total(total: int) -> None:
    if total < 1:
        raise ValueError(f"the number of shards must be at least 1, not {total}")
