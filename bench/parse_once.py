"""One parse measurement, in the fresh process that runs this file: a DagBag of PATH, as Airflow builds it.

``python parse_once.py PATH [--preimport MOD ...] [--task-start]`` prints one JSON line:
{"dags", "import_errors", "tasks", "imports_s", "dagbag_s", "total_s"} and the same three as
CPU seconds of this process ("*_cpu_s": far less sensitive to other load on the machine).

- total_s: from the first line of this script to the DAGs built, Airflow's and the DAG file's imports
  included (interpreter start-up is measured by the caller around the process).
- With --preimport, the modules named are imported before the clock of dagbag_s starts, so dagbag_s
  excludes imports: the time to build the DAGs alone.
- --task-start parses the way a task's start-up does (safe_mode off, no operator links); the caller sets
  ``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` to the one DAG the task needs.
"""

import time

STARTED = time.perf_counter()
STARTED_CPU = time.process_time()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--preimport", nargs="*", default=[])
    parser.add_argument("--task-start", action="store_true")
    args = parser.parse_args()
    from airflow.dag_processing.dagbag import DagBag

    for module in args.preimport:
        importlib.import_module(module)
    imported, imported_cpu = time.perf_counter(), time.process_time()
    options = {"safe_mode": False, "load_op_links": False} if args.task_start else {}
    bag = DagBag(dag_folder=args.path, **options)
    built, built_cpu = time.perf_counter(), time.process_time()
    print(
        json.dumps(
            {
                "dags": len(bag.dags),
                "import_errors": len(bag.import_errors),
                "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
                "imports_s": imported - STARTED,
                "dagbag_s": built - imported,
                "total_s": built - STARTED,
                "imports_cpu_s": imported_cpu - STARTED_CPU,
                "dagbag_cpu_s": built_cpu - imported_cpu,
                "total_cpu_s": built_cpu - STARTED_CPU,
            }
        )
    )


if __name__ == "__main__":
    main()
