"""Benchmark 4, test sharding: makespan of a duration-balanced split against round robin.

A synthetic suite with a realistic skew (seeded): most test files take a second or two (log-normal), a few
integration files take minutes. A "previous run" JUnit XML (pytest's xunit2 format, as `pytest --junitxml`
writes it) records their durations; the run being split takes those durations with ±25% noise, and a few
test files are new (no history: counted as the median file; they take 0.5–3 s). `handsoff shard` splits
with the previous XML;
round robin splits the sorted names (what it falls back to without an XML).

Reported per number of shards, as medians (and worst) over 20 seeded suites: makespan (the longest shard,
what the stage waits for) over the ideal (total / shards), for both splits; and the lower bound
max(ideal, longest file) / ideal, which no split can beat.
Writes bench/out/sharding.json and the XML (bench/out/sharding/previous-run.xml).
"""

from __future__ import annotations

import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

from common import machine, out_dir, say, versions, write_result
from handsoff.model.sharding import junit_durations, makespan, round_robin, split

SEED = 7
SUITES = 20  # seeded suites; the figures are medians (and the worst) over them
FILES = 160
NEW_FILES = 6
SHARDS = (2, 4, 8, 16)
PACKAGES = ("api", "spec", "deployers", "operators", "storage", "integration")


def synthetic_suite(rng: random.Random) -> dict[str, list[float]]:
    """Test file → durations of its test cases (seconds), previous run."""
    suite: dict[str, list[float]] = {}
    for i in range(FILES):
        package = PACKAGES[i % len(PACKAGES)]
        file = f"tests/{package}/test_{package}_{i:03d}.py"
        if package == "integration" and rng.random() < 0.3:  # a few slow end-to-end files: minutes
            seconds = rng.uniform(60, 240)
        else:  # the long tail of unit-test files: mostly ~1 s, some tens of seconds
            seconds = rng.lognormvariate(0.3, 1.1)
        cases = rng.randint(1, 30)
        weights = [rng.random() + 0.05 for _ in range(cases)]
        suite[file] = [seconds * w / sum(weights) for w in weights]
    return suite


def junit_xml(suite: dict[str, list[float]]) -> str:
    total = sum(len(c) for c in suite.values())
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<testsuites><testsuite name="pytest" tests="{total}">',
    ]
    for file, cases in suite.items():
        classname = file.removesuffix(".py").replace("/", ".")
        for i, seconds in enumerate(cases):
            lines.append(f'<testcase classname={quoteattr(classname)} name="test_{i}" time="{seconds:.3f}"/>')
    lines.append("</testsuite></testsuites>")
    return "\n".join(lines) + "\n"


def one_suite(seed: int) -> tuple[dict[str, list[float]], list[str], dict[str, float], dict[str, float]]:
    """(previous run's cases, this run's files, durations from the previous XML, this run's durations)."""
    rng = random.Random(seed)
    previous = synthetic_suite(rng)
    files = sorted(previous)
    new = [f"tests/api/test_new_{i}.py" for i in range(NEW_FILES)]
    files_now = sorted(files + new)
    known = junit_durations(junit_xml(previous), files_now)
    actual = {f: sum(previous[f]) * rng.uniform(0.75, 1.25) for f in files}
    actual.update({f: rng.uniform(0.5, 3.0) for f in new})  # new files start small
    return previous, files_now, known, actual


def ratios(
    files: list[str], known: dict[str, float], actual: dict[str, float], shards: int
) -> dict[str, float]:
    ideal = sum(actual.values()) / shards
    bound = max(ideal, max(actual.values()))
    robin = makespan(round_robin(files, shards), actual)
    balanced = makespan(split(files, shards, known).shards, actual)
    return {
        "ideal_s": ideal,
        "round_robin_over_ideal": robin / ideal,
        "balanced_over_ideal": balanced / ideal,
        "lower_bound_over_ideal": bound / ideal,
    }


def main() -> None:
    started = time.monotonic()
    base = out_dir("sharding")
    per_seed = {shards: [] for shards in SHARDS}
    suites = []
    for seed in range(SEED, SEED + SUITES):
        previous, files_now, known, actual = one_suite(seed)
        suites.append({"total_s": sum(actual.values()), "longest_file_s": max(actual.values())})
        for shards in SHARDS:
            per_seed[shards].append(ratios(files_now, known, actual, shards))
    results = []
    for shards, rows in per_seed.items():
        result = {"shards": shards}
        for key in ("round_robin_over_ideal", "balanced_over_ideal", "lower_bound_over_ideal"):
            values = sorted(row[key] for row in rows)
            result[key] = round(statistics.median(values), 3)
            result[f"{key}_worst"] = round(values[-1], 3)
        results.append(result)
        say(
            f"{shards} shards: round robin {result['round_robin_over_ideal']}, "
            f"balanced {result['balanced_over_ideal']}"
        )
    # one suite on disk: the XML and test files, split by the CLI as a test shard task would
    previous, files_now, known, actual = one_suite(SEED)
    xml = base / "previous-run.xml"
    xml.write_text(junit_xml(previous))
    tests = base / "suite"
    shutil.rmtree(tests, ignore_errors=True)
    for file in files_now:
        (tests / file).parent.mkdir(parents=True, exist_ok=True)
        (tests / file).touch()
    handsoff = Path(sys.executable).with_name("handsoff")
    cli = [
        subprocess.run(
            [str(handsoff), "shard", "tests", "--index", str(i), "--total", "4", "--junit", str(xml)],
            cwd=tests,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        for i in range(4)
    ]
    cli_matches = cli == [list(s) for s in split(files_now, 4, known).shards]
    if not cli_matches:
        raise SystemExit("handsoff shard does not print the library's split")
    write_result(
        "sharding",
        {
            "machine": machine(),
            "versions": versions(),
            "suite": {
                "suites": SUITES,
                "files": len(files_now),
                "files_without_history": NEW_FILES,
                "median_total_s": round(statistics.median(s["total_s"] for s in suites), 1),
                "median_longest_file_s": round(statistics.median(s["longest_file_s"] for s in suites), 1),
                "noise": "±25% between the previous run and this one",
                "seeds": f"{SEED}..{SEED + SUITES - 1}",
            },
            "results": results,
            "cli_prints_the_same_split": cli_matches,
            "elapsed_s": round(time.monotonic() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
