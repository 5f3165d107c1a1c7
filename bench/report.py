"""Write the results tables of bench/README.md (between its results markers) from bench/out/*.json.

Also writes them alone to bench/out/results.md. A benchmark without results shows as "not run".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import BENCH, OUT, read_result, say

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _s(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def machine_section(results: list[dict[str, Any]]) -> list[str]:
    first = next((r for r in results if r), None)
    if first is None:
        return ["No results yet: run `make bench`."]
    m, v = first["machine"], first["versions"]
    dates = sorted(r["measured_at"] for r in results if r)
    lines = [
        f"Measured {dates[0]} – {dates[-1]} (UTC) on {m['nproc']} cores ({m['cpu_model']}), "
        f"{m['memory_gib']} GiB memory, {m['os']}, Python {m['python']}; load average at the start "
        f"{m.get('loadavg_at_start')} (the machine is shared: figures are medians, ratios side by side).",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in sorted(v.items())) + ".",
    ]
    parse = read_result("parse")
    if parse:
        df = parse["dagfactory_venv"]
        lines.append(
            f"dag-factory {df['versions'].get('dag-factory', '?')} in its own venv "
            "(bench/out/dagfactory-venv) "
            f"with apache-airflow {df['versions'].get('apache-airflow', '?')}; "
            f"resolves against constraints.txt: {'yes' if df['resolves_with_constraints'] else 'NO'}."
        )
    return lines


def parse_section(parse: dict[str, Any] | None) -> tuple[list[str], list[tuple[str, str, str]]]:
    if not parse:
        return ["Parse benchmark: not run."], []
    shape = parse["shape"]
    dags = "; ".join(
        f"`{dag_id.replace('svc-0000', '<id>')}`: {c['tasks']} tasks ({c['mapped_tasks']} mapped, "
        f"{c['task_instances']} task instances per run), {c['edges']} dependencies, "
        f"{c['task_groups']} task groups"
        for dag_id in shape["dag_ids"]
        for c in [shape[dag_id.replace("svc-0000", "pipeline")]]
    )
    lines = [
        "One pipeline = the issue's example spec, which handsoff builds into "
        f"{shape['dags_per_pipeline']} DAGs "
        f"({dags}); N pipelines are {shape['dags_per_pipeline']}N DAGs in every form. Hand-written Python "
        "serializes identically to handsoff's DAGs; dag-factory differs only in "
        f"{', '.join(parse['equivalence']['dagfactory']['expected'])} (see above).",
        "",
        "Seconds per DagBag of N pipelines, fresh process each, median of "
        f"{parse['repeats']} rounds, except: "
        + ", ".join(
            f"{'handsoff and hand-written' if form == 'handsoff' else 'dag-factory'} at N = {n}: "
            + (f"{r[form]['rounds']}" if r[form]["rounds"] else "stopped")
            for n, r in parse["results"].items()
            for form in ("handsoff", "dagfactory")
            if r[form]["rounds"] != parse["repeats"]
        )
        + ". "
        "*incl.* = from the first line of the process to the DAGs built (Airflow's and the DAG files' "
        "imports "
        "included); *excl.* = building the DAGs only (imports done before the clock); CPU = CPU seconds of "
        "the same span (less sensitive to the shared machine's load).",
        "",
        "| N | handsoff incl. / excl. | hand-written incl. / excl. | dag-factory incl. / excl. "
        "| handsoff ÷ hand-written excl. (wall / CPU) | dag-factory ÷ handsoff incl. (wall / CPU) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    targets: list[tuple[str, str, str]] = []
    worst_vs_python, best_vs_df = 0.0, None
    stopped = parse.get("dagfactory_stopped_after_s", {})
    for n, forms in sorted(parse["results"].items(), key=lambda kv: int(kv[0])):
        hs, py, df = forms["handsoff"], forms["python"], forms["dagfactory"]
        vs_py = hs["median_dagbag_s"] / py["median_dagbag_s"]
        vs_py_cpu = hs["median_dagbag_cpu_s"] / py["median_dagbag_cpu_s"]
        if df["rounds"]:
            df_x = _x(df["median_total_s"] / hs["median_total_s"])
            df_x_cpu = df["median_total_cpu_s"] / hs["median_total_cpu_s"]
            df_cell = f"{_s(df['median_total_s'])} / {_s(df['median_dagbag_s'])}"
            df_ratio = f"{df_x} / {_x(df_x_cpu)}"
        else:
            df_x_cpu = stopped[n] / hs["median_total_s"] if n in stopped else None
            df_cell = f"> {stopped[n]:.0f} (stopped)" if n in stopped else "–"
            df_ratio = f"> {_x(df_x_cpu)} (wall)" if df_x_cpu else "–"
        lines.append(
            f"| {n} | {_s(hs['median_total_s'])} / {_s(hs['median_dagbag_s'])} "
            f"| {_s(py['median_total_s'])} / {_s(py['median_dagbag_s'])} "
            f"| {df_cell} | {_x(vs_py)} / {_x(vs_py_cpu)} | {df_ratio} |"
        )
        if int(n) >= 100:
            worst_vs_python = max(worst_vs_python, vs_py_cpu)
            if df["rounds"]:  # measured only: a stopped run is a lower bound
                best_vs_df = df_x_cpu if best_vs_df is None else min(best_vs_df, df_x_cpu)
    biggest = max(parse["results"], key=int)
    hs_big = parse["results"][biggest]["handsoff"]
    df_big = parse["results"][biggest]["dagfactory"]
    timeout = parse["dagbag_import_timeout_s"]
    targets.append(
        (
            "handsoff ≤ 1.3× hand-written Python (DAG building, CPU, N ≥ 100)",
            f"{worst_vs_python:.2f}×",
            _met(worst_vs_python <= 1.3),
        )
    )
    if best_vs_df is not None:
        bounds = "".join(
            f"; N = {n}: > {stopped[n] / parse['results'][n]['handsoff']['median_total_s']:.1f}× "
            f"(dag-factory stopped after {stopped[n]:.0f} s)"
            for n in sorted(stopped, key=int)
        )
        targets.append(
            (
                "≥ 2.5× faster than dag-factory (incl. imports, CPU, N ≥ 100)",
                f"{best_vs_df:.1f}× measured{bounds}",
                _met(best_vs_df >= 2.5),
            )
        )
    share = hs_big["median_total_s"] / timeout
    verdict = _met(True) if share <= 0.5 else "**inside, not well inside**" if share <= 1 else _met(False)
    targets.append(
        (
            f"{biggest} pipelines in one loader file well inside {timeout} s",
            f"{hs_big['median_total_s']:.1f} s incl. imports ({hs_big['median_dagbag_s']:.1f} s building), "
            f"{share:.0%} of the limit",
            verdict,
        )
    )
    if df_big["rounds"] or biggest in stopped:
        df_big_s = df_big["median_total_s"] if df_big["rounds"] else stopped[biggest]
        lines += [
            "",
            f"dag-factory's one loader file at N = {biggest}: {'more than ' if not df_big['rounds'] else ''}"
            f"{df_big_s:.0f} s, {'over' if df_big_s > timeout else 'under'} Airflow's {timeout} s "
            "`dagbag_import_timeout` (the benchmark raises the timeout to measure it; Airflow would drop "
            "every DAG "
            "of the file).",
        ]
    ts = parse["task_start"]
    small, big = sorted(ts, key=int)[0], sorted(ts, key=int)[-1]
    lines += [
        "",
        "A task's start-up parse (`_AIRFLOW_PARSING_CONTEXT_DAG_ID` naming one DAG; seconds, median):",
        "",
        "| N | handsoff loader incl. / excl. imports | hand-written (its own file) incl. / excl. |",
        "|---:|---:|---:|",
    ]
    for n in (small, big):
        hs, py = ts[n]["handsoff"], ts[n]["python"]
        lines.append(
            f"| {n} | {_s(hs['median_total_s'])} / {_s(hs['median_dagbag_s'], 3)} "
            f"| {_s(py['median_total_s'])} / {_s(py['median_dagbag_s'], 3)} |"
        )
    growth = ts[big]["handsoff"]["median_dagbag_cpu_s"] - ts[small]["handsoff"]["median_dagbag_cpu_s"]
    targets.append(
        (
            f"task start-up parse constant in N ({small} vs {big})",
            f"{ts[small]['handsoff']['median_dagbag_s'] * 1000:.0f} ms vs "
            f"{ts[big]['handsoff']['median_dagbag_s'] * 1000:.0f} ms building "
            f"({growth * 1000:+.0f} ms CPU)",
            _met(growth < 0.05),
        )
    )
    return lines, targets


def orchestration_section(orch: dict[str, Any] | None) -> list[str]:
    if not orch:
        return ["Orchestration benchmark: not run."]
    s = orch["summary"]
    hs, bash = s["orch-handsoff"], s["orch-bash"]
    stages = list(hs["median_stage_s"])
    cols = ["source + build", *stages, "rollback plan + outcome"]

    def row(figures: dict[str, Any]) -> list[float]:
        return [
            figures["median_source_and_build_s"],
            *(figures["median_stage_s"][st] for st in stages),
            figures["median_after_last_stage_s"],
        ]

    lines = [
        "One run of the example pipeline with no bakes and `true` commands "
        f"({orch['tasks']} tasks), median of "
        f"{orch['rounds']} run(s) each, alternating, on one `airflow standalone` (LocalExecutor):",
        "",
        "| seconds | run | " + " | ".join(cols) + " |",
        "|---|---:|" + "---:|" * len(cols),
        f"| handsoff | {_s(hs['median_run_wall_s'], 1)} | " + " | ".join(_s(v, 1) for v in row(hs)) + " |",
        f"| BashOperator `true`, same shape | {_s(bash['median_run_wall_s'], 1)} | "
        + " | ".join(_s(v, 1) for v in row(bash))
        + " |",
        f"| handsoff − BashOperator | {s['overhead']['run_s']:+.1f} ({_x(s['overhead']['ratio'])}) | "
        + " | ".join(f"{a - b:+.1f}" for a, b in zip(row(hs), row(bash), strict=True))
        + " |",
        "",
        f"Mean overhead per stage: {s['overhead']['per_stage_mean_s']:+.1f} s. A stage's column runs from "
        "the end of what came before it to the end of its last task, so the columns add up to the run.",
    ]
    return lines


def bakes_section(bakes: dict[str, Any] | None) -> tuple[list[str], list[tuple[str, str, str]]]:
    if not bakes:
        return ["Many-bakes benchmark: not run."], []
    cw, tr, probe = bakes["cloudwatch"], bakes["triggerer"], bakes["probe_run_s"]
    steady = bakes.get("all_deferred_before_probe") or {}
    n, gaps, deferred = bakes["pipelines"], bakes["longest_gap_between_reads_s"], bakes["deferred_in_window"]
    lines = [
        f"{n} pipelines (source → build → deploy `true` → bake watching {bakes['alarms_per_pipeline']} "
        "rollback "
        f"alarms, poll {bakes['poll_s']} s) on one `airflow standalone` "
        f"(metadata DB: {bakes['metadata_db']}), "
        f"{bakes['parallelism']}; arrivals "
        f"{bakes['arrivals']}; all {n} were baking {bakes['ramp_s']:.0f} s after the first arrived, then a "
        f"{bakes['window_s']:.0f} s window was observed:",
        "",
        "| measure (in the window) | value |",
        "|---|---:|",
        f"| bakes deferred at once, min / max | {deferred['min']} / {deferred['max']} of {n} |",
        f"| tasks in executor slots (running), max | {bakes['running_in_window_max']} of 32 |",
        "| probe pipeline run (same shape, 20 s bake): idle Airflow / all bakes deferred | "
        f"{_s(probe['idle'], 1)} s / {_s(probe['all_bakes_deferred'], 1)} s (machine load average "
        f"{bakes['loadavg_1m']['idle_probe']} / up to {bakes['loadavg_1m']['window_max']}) |",
        f"| pipelines whose alarms were read | {bakes['pipelines_read_in_window']} of {n} |",
        f"| longest gap between two reads of one pipeline, median / max | {_s(gaps['median'], 1)} s / "
        f"{_s(gaps['max'], 1)} s (poll {bakes['poll_s']} s) |",
        "| all of Airflow (every process of standalone), CPU, before the probe | "
        f"{_s(steady.get('airflow_cpu_percent'), 0)} % of one core (idle Airflow: "
        f"{_s(tr['idle'].get('airflow_cpu_percent'), 0)} %); whole machine busy "
        f"{_s(steady.get('machine_busy_percent'), 0)} % of one core (idle: "
        f"{_s(tr['idle'].get('machine_busy_percent'), 0)} %) |",
        f"| triggerer CPU | {_s(tr['cpu_percent_all_deferred'], 1)} % of one core "
        f"(idle: {_s(tr['idle']['cpu_percent'], 1)} %) |",
        f"| triggerer memory (RSS, process tree), max | {_s(tr['rss_mib_all_deferred_max'], 0)} MiB "
        f"(idle: {_s(tr['idle']['rss_mib'], 0)} MiB) |",
        f"| CloudWatch DescribeAlarms calls per minute | {_s(cw['calls_per_minute'], 0)} "
        f"(expected {n} × 60 / {bakes['poll_s']} = {_s(cw['expected_per_minute'], 0)}) |",
    ]
    starved = gaps["max"] is None or gaps["max"] > 2 * bakes["poll_s"]
    ok = deferred["min"] >= n and bakes["pipelines_read_in_window"] >= n and not starved
    measured = (
        f"{deferred['min']} deferred throughout; {bakes['running_in_window_max']} slots used; "
        f"every pipeline read, longest gap {_s(gaps['max'], 0)} s"
    )
    return lines, [(f"{n} bakes at once, deferred, none starves", measured, _met(ok))]


def sharding_section(shard: dict[str, Any] | None) -> list[str]:
    if not shard:
        return ["Sharding benchmark: not run."]
    suite = shard["suite"]
    lines = [
        f"{suite['suites']} seeded synthetic suites of {suite['files']} test files "
        f"({suite['files_without_history']} "
        f"new, without history), median total {suite['median_total_s']:.0f} s, median longest file "
        f"{suite['median_longest_file_s']:.0f} s; {suite['noise']}. Makespan ÷ ideal (total ÷ shards), "
        "median "
        "(worst) over the suites:",
        "",
        "| shards | round robin | duration-balanced (`handsoff shard --junit`) "
        "| lower bound max(ideal, longest file) |",
        "|---:|---:|---:|---:|",
    ]
    for r in shard["results"]:
        lines.append(
            f"| {r['shards']} | {r['round_robin_over_ideal']:.2f} ({r['round_robin_over_ideal_worst']:.2f}) "
            f"| {r['balanced_over_ideal']:.2f} ({r['balanced_over_ideal_worst']:.2f}) "
            f"| {r['lower_bound_over_ideal']:.2f} ({r['lower_bound_over_ideal_worst']:.2f}) |"
        )
    return lines


def render() -> str:
    parse, orch, bakes, shard = (read_result(n) for n in ("parse", "orchestration", "bakes", "sharding"))
    parse_lines, parse_targets = parse_section(parse)
    bakes_lines, bakes_targets = bakes_section(bakes)
    targets = parse_targets + bakes_targets
    lines = [
        *machine_section([parse, orch, bakes, shard]),
        "",
        "### Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *(f"| {t} | {m} | {ok} |" for t, m, ok in targets),
        "",
        "### 1. Parse time",
        "",
        *parse_lines,
        "",
        "### 2. Orchestration overhead",
        "",
        *orchestration_section(orch),
        "",
        "### 3. Many bakes at once",
        "",
        *bakes_lines,
        "",
        "### 4. Test sharding",
        "",
        *sharding_section(shard),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    block = render()
    (OUT / "results.md").write_text(block)
    readme = BENCH / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} has no {BEGIN} … {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{block}{END}{tail}")
    say(f"wrote the results into {Path(readme).relative_to(BENCH.parent)} and bench/out/results.md")


if __name__ == "__main__":
    main()
