"""Benchmark 3, many bakes at once: N pipelines (default 100) baking together on one `airflow standalone`.

Each pipeline deploys one target (`true`) and bakes one hour watching three CloudWatch rollback alarms (OK),
read from a moto server that counts the calls it serves, per pipeline (moto_counting.py). Airflow keeps
its default parallelism (32): the bakes defer to the triggerer and hold no worker slot, so all N bake at
the same time while the executor's slots stay free.

The metadata DB is a private PostgreSQL cluster (tests/celery_cluster.py, as the scale-out test makes it):
with the SQLite file `airflow standalone` uses by default, 100 runs started together stall on database locks
(its scheduler and triggerer exit on "database is locked"; with WAL the API server still waits 20 s per
lock), so without PostgreSQL the benchmark falls back to SQLite in WAL mode with arrivals paced (at most 8
pipelines deploying at once). All N runs are triggered together, and once all N bakes are deferred a window
of BENCH_BAKES_WINDOW_S (90) seconds is observed, then everything is stopped (no bake needs to end):

- how many bakes are deferred at once, and how many tasks hold executor slots meanwhile;
- a probe pipeline (same shape, 20 s bake) run on the idle Airflow and again in the window: the same time
  means free worker slots;
- starvation: the longest gap between two alarm reads of the same pipeline in the window (the poll is 30 s);
  a starved trigger would show a longer gap, a missing one no reads at all;
- the triggerer's CPU and memory (process tree, psutil), idle and in the window;
- CloudWatch DescribeAlarms calls per minute in the window, against N × 60 / poll.

Writes bench/out/bakes.json. Environment: BENCH_BAKES (100), BENCH_BAKES_WINDOW_S (90), BENCH_BAKES_PORT
(8792), BENCH_BAKES_IN_FLIGHT (pipelines deploying at once: all with PostgreSQL, 8 with SQLite).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from airflow_local import Standalone, free_port
from common import Group, exit_on_sigterm, machine, median, out_dir, say, versions, write_result
from generate import write_specs  # (puts tests/ on the path: celery_cluster's private PostgreSQL)
from orchestration import git_repo

from celery_cluster import MissingService, Postgres  # noqa: E402  isort: skip

POLL_S = 30
BAKE_S = 3600  # longer than the benchmark: every bake is still deferred when it stops
PROBE_BAKE_S = 20  # a bake of a few seconds can lose a known Airflow race (see README)
ALARM_KINDS = ("errors", "latency", "5xx")
PREFIX = "bench-bake-"  # the pipelines that bake together (the probe's id does not contain it)
PROBE = "probe"
BAKE_TASK = "prod.main.bake"
TI_LIST = "/api/v2/dags/~/dagRuns/~/taskInstances"
SAMPLE_EVERY_S = 3.0
TRIGGER_THREADS = 8  # runs are created by concurrent REST calls, as many clients would


def bake_spec(name: str, repo: Path, store: Path, bake_s: int) -> dict[str, Any]:
    """source → build → deploy `true` → bake watching three rollback alarms named after the target."""
    return {
        "pipeline": name,
        "source": {"repo": str(repo), "branch": "main"},
        "artifacts": {"store": store.as_uri()},
        "build": {"artifact": "artifact.txt"},
        "deploy": {"type": "command", "deploy": "true", "rollback": "true"},
        "alarms": {"rollback": [f"${{target.name}}-{kind}" for kind in ALARM_KINDS], "poll": f"{POLL_S}s"},
        "stages": [
            {
                "name": "prod",
                "waves": [
                    {"name": "main", "targets": [{"name": name, "region": "us-east-1"}], "bake": f"{bake_s}s"}
                ],
            }
        ],
    }


def create_alarms(url: str, names: list[str]) -> None:
    """Metric alarms in OK state (moto does not evaluate alarms from metric data)."""
    import boto3

    cloudwatch = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="Errors",
            Namespace="Bench",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="bench")


def moto_calls(url: str) -> list[list[Any]]:
    with urllib.request.urlopen(f"{url}/_bench/calls", timeout=30) as response:
        return json.loads(response.read())["calls"]


def triggerer_tree(standalone_pid: int) -> list[psutil.Process]:
    """The triggerer process and its children (Airflow 3 runs triggers in a subprocess)."""
    for proc in psutil.Process(standalone_pid).children(recursive=True):
        try:
            if any(part.endswith("triggerer") for part in proc.cmdline()):
                return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
    return []


def tree_usage(procs: list[psutil.Process]) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of the processes, summed."""
    cpu = rss = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            cpu += times.user + times.system
            rss += proc.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return cpu, rss


def group_cpu(leader: int) -> float:
    """CPU seconds of `airflow standalone` and every process under it (all of Airflow here)."""
    try:
        root = psutil.Process(leader)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    return tree_usage(procs)[0]


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all cores)."""
    times = psutil.cpu_times()
    return times.user + times.system + getattr(times, "nice", 0.0) + getattr(times, "irq", 0.0)


def count(api: Any, query: str) -> int:
    """Task instances matching `query`, across every DAG and run."""
    return api.get(f"{TI_LIST}?{query}&limit=1")["total_entries"]


def _time(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def main() -> None:
    exit_on_sigterm()
    started = time.monotonic()
    n = int(os.environ.get("BENCH_BAKES", "100"))
    window_s = float(os.environ.get("BENCH_BAKES_WINDOW_S", "90"))
    base = out_dir("bakes")
    repo = git_repo(base / "git")
    specs, dags, store = base / "specs", base / "dags", base / "artifacts"
    for folder in (specs, dags, store):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    dag_ids = [f"{PREFIX}{i:03d}" for i in range(n)]
    documents = [bake_spec(d, repo, store, BAKE_S) for d in dag_ids] + [
        bake_spec(PROBE, repo, store, PROBE_BAKE_S)
    ]
    write_specs(specs, documents, {"owners": ["bench"]})
    shutil.copy(Path(__file__).resolve().parent.parent / "dags" / "handsoff_pipelines.py", dags)
    moto_port = free_port(0)
    url = f"http://127.0.0.1:{moto_port}"
    moto_args = [
        sys.executable,
        str(Path(__file__).with_name("moto_counting.py")),
        str(moto_port),
        PREFIX + r"\d+",
    ]
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(Group(moto_args, dict(os.environ), base / "moto.log"))
        db_url, metadata_db = None, "SQLite (WAL), as `airflow standalone` makes it"
        try:
            postgres = Postgres()
            stack.callback(postgres.stop)
            db_url, metadata_db = (
                postgres.start().url,
                "a private PostgreSQL cluster (tests/celery_cluster.py)",
            )
        except MissingService as err:
            say(f"no PostgreSQL ({err}); SQLite instead, arrivals paced")
        in_flight = int(os.environ.get("BENCH_BAKES_IN_FLIGHT", str(n if db_url else 8)))
        _wait_http(url, moto)
        create_alarms(url, [f"{d}-{kind}" for d in [*dag_ids, PROBE] for kind in ALARM_KINDS])
        conn = {"conn_type": "aws", "login": "x", "password": "x"}
        conn["extra"] = {"region_name": "us-east-1", "endpoint_url": url}
        env = {
            "HANDSOFF_SPECS_DIR": str(specs),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        }
        port = int(os.environ.get("BENCH_BAKES_PORT", "8792"))
        airflow = stack.enter_context(Standalone(base / "airflow-home", dags, port, env, db_url=db_url))
        assert airflow.api is not None and airflow.group is not None
        api = airflow.api
        loaded = airflow.wait_for_dags({*dag_ids, PROBE}, timeout=300)
        say(f"{n + 1} DAGs loaded {loaded:.0f}s after Airflow was healthy (metadata DB: {metadata_db})")
        load_before_probe = os.getloadavg()[0]
        probe_idle = _probe(api, "idle")
        say(f"probe pipeline on an idle Airflow: {probe_idle:.1f}s")
        triggerer = triggerer_tree(airflow.group.pid)
        cpu0, _ = tree_usage(triggerer)
        airflow0, machine0 = group_cpu(airflow.group.pid), machine_busy()
        time.sleep(10)
        cpu1, idle_rss = tree_usage(triggerer)
        idle = {
            "cpu_percent": round(100 * (cpu1 - cpu0) / 10, 1),
            "rss_mib": round(idle_rss, 1),
            "airflow_cpu_percent": round(100 * (group_cpu(airflow.group.pid) - airflow0) / 10, 1),
            "machine_busy_percent": round(100 * (machine_busy() - machine0) / 10, 1),
        }
        t0 = time.time()
        ramp = _ramp(api, dag_ids, in_flight, t0)
        say(f"all {n} bakes deferred {ramp[-1]['t']:.0f}s after the first run was triggered")
        window = _window(api, airflow, n, window_s, t0)
        calls = moto_calls(url)
    figures = _figures(n, window_s, ramp, window, calls, idle, probe_idle)
    figures["arrivals"] = (
        f"all {n} triggered at once"
        if in_flight >= n
        else f"one after the other, at most {in_flight} deploying at once"
    )
    figures["metadata_db"] = metadata_db
    figures["loadavg_1m"] = {
        "idle_probe": round(load_before_probe, 2),
        "window_max": max(s["loadavg_1m"] for s in window["samples"]),
    }
    write_result(
        "bakes",
        {
            "machine": machine(),
            "versions": versions(),
            **figures,
            "elapsed_s": round(time.monotonic() - started, 1),
        },
    )


def _wait_http(url: str, group: Group, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group.alive():
            raise RuntimeError(f"moto server exited:\n{group.tail()}")
        try:
            urllib.request.urlopen(f"{url}/_bench/calls", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("moto server did not start")


def _probe(api: Any, run_id: str) -> float:
    """Run the probe pipeline (same shape, a 20 s bake) once; its wall time."""
    api.trigger(PROBE, run_id)
    run = api.wait_for_run(PROBE, run_id, 600)
    if run["state"] != "success":
        raise RuntimeError(f"probe run {run_id} ended {run['state']}")
    return _time(run["end_date"]) - _time(run["start_date"])


def _ours(state: str) -> str:
    return f"task_id={BAKE_TASK}&dag_id_pattern={PREFIX}&state={state}"


def _ramp(api: Any, dag_ids: list[str], in_flight: int, t0: float) -> list[dict[str, Any]]:
    """Trigger every pipeline, at most `in_flight` before their bake at once, until all bakes are deferred."""
    n, triggered, samples = len(dag_ids), 0, []
    deadline, last_report = time.monotonic() + 1200, 0.0
    while time.monotonic() < deadline:
        deferred = count(api, _ours("deferred"))
        samples.append({"t": round(time.time() - t0, 1), "triggered": triggered, "deferred": deferred})
        if len(samples) % 10 == 0 and count(api, "state=failed"):
            raise RuntimeError("a task failed before its bake: see bench/out/bakes/airflow-home/logs")
        if deferred >= n:
            return samples
        batch = dag_ids[triggered : min(n, deferred + in_flight)]
        if batch:
            with ThreadPoolExecutor(TRIGGER_THREADS) as pool:
                list(pool.map(lambda dag_id: api.trigger(dag_id, "bench"), batch))
            triggered += len(batch)
        if time.monotonic() - last_report > 30:
            say(f"t={samples[-1]['t']:.0f}s: {triggered} triggered, {deferred} baking")
            last_report = time.monotonic()
        time.sleep(SAMPLE_EVERY_S)
    raise RuntimeError(f"not every bake deferred in time: {samples[-1]}")


def _window(api: Any, airflow: Standalone, n: int, window_s: float, t0: float) -> dict[str, Any]:
    """Observe `window_s` seconds with every bake deferred; run the probe once in the middle."""
    assert airflow.group is not None
    triggerer = triggerer_tree(airflow.group.pid)
    begin = time.time()
    cpu_begin, _ = tree_usage(triggerer)
    airflow_begin, machine_begin = group_cpu(airflow.group.pid), machine_busy()
    steady: dict[str, float] = {}
    samples, probe_s = [], None
    while time.time() - begin < window_s:
        _, rss = tree_usage(triggerer)
        samples.append(
            {
                "t": round(time.time() - t0, 1),
                "deferred": count(api, _ours("deferred")),
                "running": count(api, "state=running"),
                "queued": count(api, "state=queued"),
                "triggerer_rss_mib": round(rss, 1),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        )
        if probe_s is None and time.time() - begin > window_s / 3:
            seconds = time.time() - begin  # before the probe: Airflow with only the 100 bakes deferred
            steady = {
                "seconds": round(seconds, 1),
                "airflow_cpu_percent": round(
                    100 * (group_cpu(airflow.group.pid) - airflow_begin) / seconds, 1
                ),
                "machine_busy_percent": round(100 * (machine_busy() - machine_begin) / seconds, 1),
            }
            probe_s = _probe(api, "busy")
            say(f"probe pipeline with all {n} bakes deferred: {probe_s:.1f}s")
        time.sleep(SAMPLE_EVERY_S)
    end = time.time()
    cpu_end, _ = tree_usage(triggerer)
    return {
        "begin": begin,
        "end": end,
        "samples": samples,
        "probe_s": probe_s,
        "steady": steady,
        "triggerer_cpu_percent": round(100 * (cpu_end - cpu_begin) / (end - begin), 1),
    }


def _figures(
    n: int,
    window_s: float,
    ramp: list[dict[str, Any]],
    window: dict[str, Any],
    calls: list[list[Any]],
    idle: dict[str, Any],
    probe_idle: float,
) -> dict[str, Any]:
    begin, end, samples = window["begin"], window["end"], window["samples"]
    # the probe's own bake reads alarms too: it is tagged "" (its alarm names do not match the prefix)
    reads = [c for c in calls if c[2] == "DescribeAlarms" and begin <= c[0] <= end]
    ours = [c for c in reads if c[3].startswith(PREFIX)]
    by_pipeline: dict[str, list[float]] = {}
    for when, _, _, tag in ours:
        by_pipeline.setdefault(tag, []).append(when)
    gaps = []
    for times in by_pipeline.values():
        points = [begin, *sorted(times), end]
        gaps.append(max(b - a for a, b in zip(points, points[1:], strict=False)))
    minutes = (end - begin) / 60
    return {
        "pipelines": n,
        "bake_s": BAKE_S,
        "poll_s": POLL_S,
        "alarms_per_pipeline": len(ALARM_KINDS),
        "parallelism": "Airflow's default ([core] parallelism = 32)",
        "ramp_s": ramp[-1]["t"],
        "window_s": round(end - begin, 1),
        "deferred_in_window": {
            "min": min(s["deferred"] for s in samples),
            "max": max(s["deferred"] for s in samples),
        },
        "running_in_window_max": max(s["running"] for s in samples),
        "queued_in_window_max": max(s["queued"] for s in samples),
        "probe_run_s": {"idle": round(probe_idle, 1), "all_bakes_deferred": round(window["probe_s"] or 0, 1)},
        "pipelines_read_in_window": len(by_pipeline),
        "longest_gap_between_reads_s": {
            "median": round(median(gaps), 1) if gaps else None,
            "max": round(max(gaps), 1) if gaps else None,
        },
        "all_deferred_before_probe": window["steady"],
        "triggerer": {
            "idle": idle,
            "cpu_percent_all_deferred": window["triggerer_cpu_percent"],
            "rss_mib_all_deferred_max": max(s["triggerer_rss_mib"] for s in samples),
        },
        "cloudwatch": {
            "describe_alarms_calls_in_window": len(ours),
            "calls_per_minute": round(len(ours) / minutes, 1),
            "expected_per_minute": round(n * 60 / POLL_S, 1),
            "other_calls_in_window": len(reads) - len(ours),
        },
        "ramp": ramp,
        "window_samples": samples,
    }


if __name__ == "__main__":
    main()
