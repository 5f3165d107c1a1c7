"""Benchmark 1, parse time: N pipelines as handsoff specs, hand-written Python and dag-factory YAML.

Every measurement is a fresh process (parse_once.py) building a DagBag of the form's DAG folder, the forms
interleaved in each round so that they share the machine's load; the figures are medians over rounds.
Wall seconds are what users wait for; CPU seconds (user + system of the process) are what the ratios
are computed from as well, being far less sensitive to other load on a shared machine.

Also: a task's start-up parse (``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` naming one DAG) at N = 10 and 1000.

Writes bench/out/parse.json. Environment: BENCH_REPEATS (rounds, default 3), BENCH_REPEATS_LARGE (rounds at
N ≥ 1000, 2), BENCH_SIZES (10,100,1000), BENCH_DAGFACTORY_REPEATS_LARGE (dag-factory rounds at N ≥ 100, 1:
one takes minutes), BENCH_DAGFACTORY_LIMIT_S (a dag-factory process is stopped after it, 60: reported as
"more than", which is already twice Airflow's 30 s import timeout).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    DAGFACTORY_VENV,
    OUT,
    REPO,
    exit_on_sigterm,
    machine,
    median,
    out_dir,
    say,
    versions,
    write_result,
)
from equivalence import compare
from generate import generate, pipeline_id

DAGBAG_TIMEOUT_S = 30  # Airflow's default [core] dagbag_import_timeout, per DAG file
TASK_START_DAG = 7  # the pipeline whose task start-up is measured
FORMS = ("handsoff", "python", "dagfactory")
#: Imported before the clock starts for "excluding imports": what each form's DAG files import.
PREIMPORTS = {
    "handsoff": ["handsoff.factory.loader"],
    # every operator class the hand-written files import, and airflow.sdk
    "python": ["handsoff.factory.pipeline_dag"],
    "dagfactory": ["dagfactory", "handsoff.factory.pipeline_dag"],
}


def ensure_dagfactory_venv() -> dict[str, Any]:
    """bench/out/dagfactory-venv: dag-factory 1.1.0 with the pinned Airflow (never in the project's venv).

    handsoff itself is put on its path from the source tree (a .pth file), for the operator classes.
    """
    python = DAGFACTORY_VENV / "bin" / "python"
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "-q",
            "-c",
            str(REPO / "constraints.txt"),
            "dag-factory==1.1.0",
        ],
        capture_output=True,
        text=True,
    )
    resolves = check.returncode == 0
    if not python.exists():
        say("creating bench/out/dagfactory-venv (dag-factory 1.1.0 + the pinned Airflow; about a minute)")
        subprocess.run(["python3.11", "-m", "venv", str(DAGFACTORY_VENV)], check=True)
        subprocess.run(
            [
                str(DAGFACTORY_VENV / "bin" / "pip"),
                "install",
                "-q",
                "-c",
                str(REPO / "constraints.txt"),
                "dag-factory==1.1.0",
                "apache-airflow==3.3.2",
                "apache-airflow-providers-amazon[aiobotocore]",
                "apache-airflow-providers-standard",
                "jsonschema",
                "holidays",
            ],
            check=True,
        )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "handsoff_source.pth").write_text(str(REPO / "provider") + "\n")
    return {"resolves_with_constraints": resolves, "pip_check": check.stderr.strip()[-500:]}


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a measured process: a throwaway AIRFLOW_HOME, bytecode cached under bench/out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        AIRFLOW_HOME=str(out_dir("parse", "airflow-home")),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="900",  # measured here; compared with the 30 s default below
        AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
        AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY="False",
        DO_NOT_TRACK="1",
        SCARF_NO_ANALYTICS="1",
        PYTHONPYCACHEPREFIX=str(out_dir("pycache")),
        PYTHONWARNINGS="ignore",
        **(extra or {}),
    )
    return env


def python_of(form: str) -> str:
    return str(DAGFACTORY_VENV / "bin" / "python") if form == "dagfactory" else sys.executable


def measure(
    form: str, folder: Path, *, task_start: bool = False, dag_file: Path | None = None, limit: float = 1200
) -> dict[str, Any]:
    """One fresh process: its JSON line, its wall time and its CPU time (user + system)."""
    dags = dag_file or folder / form / "dags"
    extra = {"HANDSOFF_SPECS_DIR": str(folder / "handsoff" / "specs")}
    if task_start:
        extra.update(
            _AIRFLOW_PARSING_CONTEXT_DAG_ID=pipeline_id(TASK_START_DAG),
            _AIRFLOW_PARSING_CONTEXT_TASK_ID="build",
        )
    args = [
        python_of(form),
        str(Path(__file__).with_name("parse_once.py")),
        str(dags),
        "--preimport",
        *PREIMPORTS[form],
    ]
    if task_start:
        args.append("--task-start")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, env=child_env(extra), capture_output=True, text=True, timeout=limit)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{form} parse failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    result["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def compile_dags(folder: Path) -> None:
    """Bytecode of the DAG files of `folder` into the measured processes' cache."""
    code = "import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)"
    subprocess.run([sys.executable, "-c", code, str(folder)], env=child_env(), check=True, timeout=600)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    if not runs:
        return {"rounds": 0}
    keys = (
        "imports_s",
        "dagbag_s",
        "total_s",
        "imports_cpu_s",
        "dagbag_cpu_s",
        "total_cpu_s",
        "process_wall_s",
        "process_cpu_s",
    )
    summary = {f"median_{key}": round(median(r[key] for r in runs), 3) for key in keys}
    summary.update(rounds=len(runs), dags=runs[0]["dags"], tasks=runs[0]["tasks"], runs=runs)
    return summary


def equivalence(folder: Path) -> dict[str, Any]:
    """The serialized DAGs of the three forms of `folder`, compared with handsoff's."""
    described = {}
    for form in FORMS:
        target = OUT / "parse" / f"equivalence-{form}.json"
        args = [
            python_of(form),
            str(Path(__file__).with_name("equivalence.py")),
            str(folder / form / "dags"),
            str(target),
        ]
        env = child_env({"HANDSOFF_SPECS_DIR": str(folder / "handsoff" / "specs")})
        subprocess.run(args, env=env, check=True, capture_output=True, timeout=600)
        described[form] = json.loads(target.read_text())
    result = {
        "python": compare(described["handsoff"], described["python"]),
        "dagfactory": compare(described["handsoff"], described["dagfactory"], dagfactory=True),
    }
    for form, outcome in result.items():
        if outcome["unexpected_count"]:
            raise SystemExit(f"{form} does not define the same DAGs as handsoff: {outcome['unexpected']}")
    return result


def main() -> None:
    exit_on_sigterm()
    started = time.monotonic()
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    large_repeats = int(os.environ.get("BENCH_REPEATS_LARGE", "2"))
    large_df_repeats = int(os.environ.get("BENCH_DAGFACTORY_REPEATS_LARGE", "1"))
    df_limit = float(os.environ.get("BENCH_DAGFACTORY_LIMIT_S", "60"))
    sizes = [int(n) for n in os.environ.get("BENCH_SIZES", "10,100,1000").split(",")]
    dagfactory = ensure_dagfactory_venv()
    base = out_dir("parse")
    biggest = max(sizes)
    for n in sizes:  # each size on its own: a DAG's doc names its spec file
        say(f"generating {n} pipelines in three forms")
        shape = generate(n, base / f"n{n}")
    say(f"one DAG: {shape}")
    equal = equivalence(base / f"n{min(sizes)}")
    say(f"equivalence: hand-written identical; dag-factory differs only in {equal['dagfactory']['expected']}")
    for form in FORMS:  # warm-up: every module's bytecode into the cache (bench/out/pycache), not measured
        measure(form, base / f"n{min(sizes)}")
    for n in sizes:  # and the hand-written DAG files' bytecode, as a DAG processor that ran before has it
        compile_dags(base / f"n{n}" / "python" / "dags")
    results: dict[str, Any] = {}
    stopped: dict[str, float] = {}
    for n in sizes:
        folder = base / f"n{n}"
        runs: dict[str, list[dict[str, Any]]] = {form: [] for form in FORMS}
        for round_ in range(repeats if n < 1000 else large_repeats):
            for form in FORMS:
                if form == "dagfactory" and n >= 100 and round_ >= large_df_repeats:
                    continue
                try:
                    runs[form].append(measure(form, folder, limit=df_limit if form == "dagfactory" else 1200))
                except subprocess.TimeoutExpired:
                    stopped[str(n)] = df_limit
                    say(f"N={n} {form}: stopped after {df_limit:.0f}s (BENCH_DAGFACTORY_LIMIT_S)")
                    continue
                say(f"N={n} {form} round {round_ + 1}: {runs[form][-1]['total_s']:.2f}s")
        results[str(n)] = {form: summarize(r) for form, r in runs.items()}
    task_start: dict[str, Any] = {}
    for n in (min(sizes), biggest):
        folder = base / f"n{n}"
        loader = folder / "handsoff" / "dags" / "handsoff_pipelines.py"
        hand_file = folder / "python" / "dags" / f"{pipeline_id(TASK_START_DAG).replace('-', '_')}.py"
        measure("handsoff", folder, task_start=True, dag_file=loader)
        runs = {"handsoff": [], "python": []}
        for _ in range(large_repeats):
            runs["handsoff"].append(measure("handsoff", folder, task_start=True, dag_file=loader))
            runs["python"].append(measure("python", folder, task_start=True, dag_file=hand_file))
        task_start[str(n)] = {form: summarize(r) for form, r in runs.items()}
        say(f"task start-up parse N={n}: handsoff {task_start[str(n)]['handsoff']['median_total_s']:.2f}s")
    write_result(
        "parse",
        {
            "machine": machine(),
            "versions": versions(),
            "dagfactory_venv": {**dagfactory, "versions": versions(DAGFACTORY_VENV / "bin" / "python")},
            "shape": shape,
            "equivalence": equal,
            "repeats": repeats,
            "dagbag_import_timeout_s": DAGBAG_TIMEOUT_S,
            "results": results,
            "dagfactory_stopped_after_s": stopped,
            "task_start": task_start,
            "elapsed_s": round(time.monotonic() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
