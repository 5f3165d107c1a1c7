"""Inputs of the parse benchmark: N pipelines as handsoff specs, hand-written Python and dag-factory YAML.

All three come from one source of truth. The handsoff spec is the issue's example (tests/support/specs.py
ISSUE_EXAMPLE) under another pipeline id. The hand-written Python and the dag-factory YAML are written from
what handsoff's factory *calls* while it builds that spec: every operator class, every keyword argument, the
task groups and the dependencies, recorded and then written out literally. So the three define the same
DAG (checked by ``equivalence.py``), and when the factory changes, they follow.

Usage: ``python bench/generate.py N FOLDER`` (writes FOLDER/{handsoff,python,dagfactory}).
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from common import REPO

sys.path.insert(0, str(REPO / "tests"))
from support.specs import ISSUE_EXAMPLE  # noqa: E402

#: templates/service.json of the generated specs root (the example extends it).
SERVICE_TEMPLATE: dict[str, Any] = {"tags": ["orders"], "owners": ["sre"]}
HANDSOFF_DAG_FILE = REPO / "dags" / "handsoff_pipelines.py"
DAGFACTORY_LOADER = '''"""Airflow DAG file: every dag-factory YAML under configs/ (one DAG per file)."""

from pathlib import Path

from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), dags_folder=str(Path(__file__).resolve().parent.parent / "configs"))
'''


def pipeline_id(index: int) -> str:
    return f"svc-{index:04d}"


def spec_document(index: int, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The example spec (or `base`) as pipeline number `index`."""
    document = copy.deepcopy(base if base is not None else ISSUE_EXAMPLE)
    document["pipeline"] = pipeline_id(index)
    return document


def write_specs(root: Path, documents: list[dict[str, Any]], template: dict[str, Any] | None = None) -> None:
    """A specs root: templates/service.json and one ``<pipeline>.json`` per document."""
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "templates" / "service.json").write_text(json.dumps(template or SERVICE_TEMPLATE, indent=2))
    for document in documents:
        (root / f"{document['pipeline']}.json").write_text(json.dumps(document, indent=2) + "\n")


# --- recording what the factory calls ---------------------------------------------------------------


@dataclass
class Call:
    """One operator the factory created: its class, keyword arguments and, when mapped, `expand`."""

    cls: type
    kwargs: dict[str, Any]
    expand: dict[str, Any] | None = None


@dataclass
class Recording:
    """One DAG as it was built: its own keyword arguments and the call that created each task (by id)."""

    dag_kwargs: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)


class _Session:
    """The recordings of every DAG built while recording, in order; operators go to the latest."""

    def __init__(self) -> None:
        self.recordings: dict[str, Recording] = {}
        self.current = Recording()


class _OperatorRecorder:
    def __init__(self, cls: type, session: _Session) -> None:
        self.cls, self.session = cls, session

    def __call__(self, **kwargs: Any) -> Any:
        task = self.cls(**kwargs)
        self.session.current.calls[task.task_id] = Call(self.cls, dict(kwargs))
        return task

    def partial(self, **kwargs: Any) -> _PartialRecorder:
        return _PartialRecorder(self, kwargs)


class _PartialRecorder:
    def __init__(self, operator: _OperatorRecorder, kwargs: dict[str, Any]) -> None:
        self.operator, self.kwargs = operator, kwargs

    def expand(self, **expand: Any) -> Any:
        task = self.operator.cls.partial(**self.kwargs).expand(**expand)
        call = Call(self.operator.cls, dict(self.kwargs), dict(expand))
        self.operator.session.current.calls[task.task_id] = call
        return task


@contextmanager
def _recording() -> Iterator[_Session]:
    """Replace `DAG` and every operator class named in handsoff's modules by recorders, while loading."""
    import handsoff.factory.loader  # noqa: F401  (imports every module the loader builds DAGs with)
    from airflow.sdk import DAG, BaseOperator

    session = _Session()

    def record_dag(**kwargs: Any) -> Any:
        session.current = Recording(dag_kwargs=dict(kwargs))
        session.recordings[kwargs["dag_id"]] = session.current
        return DAG(**kwargs)

    patched: list[tuple[Any, str, Any]] = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("handsoff.") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is DAG:
                patched.append((module, attr, value))
                setattr(module, attr, record_dag)
            elif isinstance(value, type) and issubclass(value, BaseOperator):
                patched.append((module, attr, value))
                setattr(module, attr, _OperatorRecorder(value, session))
    try:
        yield session
    finally:
        for module, attr, value in patched:
            setattr(module, attr, value)


def record(specs_root: Path) -> list[tuple[Any, Recording]]:
    """Every DAG handsoff's loader builds from `specs_root`, with the calls that built it."""
    from handsoff.factory.loader import load_dags

    with _recording() as session:
        dags = load_dags(specs_root)
    return [(dag, session.recordings[dag_id]) for dag_id, dag in dags.items()]


# --- literals ------------------------------------------------------------------------------------------


def py_literal(value: Any, names: dict[int, str] | None = None) -> str:
    """Python source for `value` (what a person would type); `names` maps shared objects to a constant."""
    from airflow.sdk import Param

    if names and id(value) in names:
        return names[id(value)]
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, dict | MappingProxyType):
        items = ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(py_literal(v) + ", " for v in value) + ")"
    if isinstance(value, timedelta):
        return f"timedelta(seconds={value.total_seconds()!r})"
    if isinstance(value, datetime):
        if value.utcoffset() != timedelta(0):
            raise TypeError(f"only UTC datetimes are supported: {value!r}")
        return f"datetime.fromisoformat({value.replace(tzinfo=None).isoformat()!r}).replace(tzinfo=UTC)"
    if isinstance(value, Param):
        args = [] if _unset(value.value) else [py_literal(value.value)]
        if value.description is not None:
            args.append(f"description={py_literal(value.description)}")
        args += [f"{k}={py_literal(v)}" for k, v in value.schema.items()]
        return f"Param({', '.join(args)})"
    raise TypeError(f"no literal for {type(value).__name__}: {value!r}")


def _unset(value: Any) -> bool:
    """Airflow's NOTSET (a Param without a default)."""
    from airflow.sdk.definitions._internal.types import ArgNotSet

    return isinstance(value, ArgNotSet)


def yaml_value(value: Any) -> Any:
    """`value` as dag-factory YAML data (``__type__`` objects where YAML has no literal)."""
    from airflow.sdk import Param

    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict | MappingProxyType):
        return {k: yaml_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [yaml_value(v) for v in value]
    if isinstance(value, timedelta):
        return {"__type__": "datetime.timedelta", "seconds": value.total_seconds()}
    if isinstance(value, Param):
        out: dict[str, Any] = {"__type__": "airflow.sdk.Param"}
        if not _unset(value.value):
            out["__args__"] = [yaml_value(value.value)]
        if value.description is not None:
            out["description"] = value.description
        return {**out, **{k: yaml_value(v) for k, v in value.schema.items()}}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"no YAML for {type(value).__name__}: {value!r}")


# --- hand-written Python ----------------------------------------------------------------------------------


def _variable(task_id: str, taken: set[str]) -> str:
    base = "".join(ch if ch.isalnum() else "_" for ch in task_id).strip("_") or "task"
    if base[0].isdigit():
        base = f"t_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def python_source(pairs: list[tuple[Any, Recording]]) -> str:
    """A DAG file building the DAGs directly: same classes, arguments, groups and dependencies."""
    classes = {(c.cls.__module__, c.cls.__name__) for _, rec in pairs for c in rec.calls.values()}
    blocks, constants_lines = [], []
    for number, (dag, recording) in enumerate(pairs):
        shared = _shared_values(recording)
        constants = {oid: f"SHARED_{number}_{i}" for i, oid in enumerate(shared)}
        constants_lines += [f"{constants[oid]} = {py_literal(value)}" for oid, value in shared.items()]
        blocks += ["", *_dag_block(dag, recording, constants)]
    ids = ", ".join(dag.dag_id for dag, _ in pairs)
    lines = [
        f'"""{ids}, written by hand as Airflow Python (the parse benchmark\'s lower bound).',
        "",
        "Same operators, arguments, groups and dependencies as handsoff builds from the spec",
        '(bench/generate.py writes it, bench/equivalence.py checks that both serialize the same)."""',
        "",
        "from datetime import UTC, datetime, timedelta",
        "",
        "from airflow.sdk import DAG, Param, TaskGroup, TriggerRule",
        "",
        *(f"from {module} import {name}" for module, name in sorted(classes)),
        "",
        *constants_lines,
        *blocks,
        "",
    ]
    return "\n".join(lines)


def _dag_block(dag: Any, recording: Recording, constants: dict[int, str]) -> list[str]:
    from airflow.sdk import TaskGroup

    variables: dict[str, str] = {}
    taken: set[str] = {"dag"}
    body: list[str] = []
    order: list[Any] = []

    def emit_group(group: Any, indent: str) -> None:
        for child in group.children.values():
            if isinstance(child, TaskGroup):
                args = [repr(child._group_id)]
                if child.tooltip:
                    args.append(f"tooltip={child.tooltip!r}")
                body.append(f"{indent}with TaskGroup({', '.join(args)}):")
                emit_group(child, indent + "    ")
                continue
            call = recording.calls[child.task_id]
            var = variables[child.task_id] = _variable(child.task_id, taken)
            kwargs = {k: v for k, v in call.kwargs.items() if k != "task_group"}
            args = ", ".join(f"{k}={py_literal(v, constants)}" for k, v in kwargs.items())
            if call.expand is None:
                body.append(f"{indent}{var} = {call.cls.__name__}({args})")
            else:
                expand = ", ".join(f"{k}={py_literal(v)}" for k, v in call.expand.items())
                body.append(f"{indent}{var} = {call.cls.__name__}.partial({args}).expand({expand})")
            order.append(child)

    emit_group(dag.task_group, "    ")
    for task in order:
        upstream = [variables[t] for t in sorted(task.upstream_task_ids)]
        if len(upstream) == 1:
            body.append(f"    {upstream[0]} >> {variables[task.task_id]}")
        elif upstream:
            body.append(f"    [{', '.join(upstream)}] >> {variables[task.task_id]}")
    dag_args = ",\n        ".join(f"{k}={py_literal(v)}" for k, v in recording.dag_kwargs.items())
    return [f"with DAG(\n        {dag_args},\n):", *body]


def _shared_values(recording: Recording) -> dict[int, Any]:
    """Dicts and lists passed to more than one operator (the rollback plan): written once, as a constant."""
    seen: dict[int, tuple[Any, int]] = {}
    for call in recording.calls.values():
        for value in call.kwargs.values():
            if isinstance(value, dict | list):
                obj, count = seen.get(id(value), (value, 0))
                seen[id(value)] = (obj, count + 1)
    return {oid: obj for oid, (obj, count) in seen.items() if count > 1}


# --- dag-factory YAML --------------------------------------------------------------------------------------


def dagfactory_config(dag: Any, recording: Recording) -> dict[str, Any]:
    """The dag-factory 1.1.0 config of `dag`.

    dag-factory keys tasks and task groups by their *local* name, so it cannot express two groups or two
    tasks of the same local name (stage and wave "alpha"; "bake" and "rollback" in several groups). The tasks
    are therefore flat, with the full dotted task ids handsoff gives them (same ids, operators, arguments
    and dependencies; no TaskGroup objects).
    """
    kwargs = dict(recording.dag_kwargs)
    start = kwargs.pop("start_date")
    config: dict[str, Any] = {k: yaml_value(v) for k, v in kwargs.items() if k != "dag_id"}
    config["start_date"] = start.astimezone(UTC).strftime("%Y-%m-%d")
    config["timezone"] = "UTC"
    config["schedule"] = None
    tasks: dict[str, Any] = {}
    # A value passed to several operators (the rollback plan) is written once, as a YAML anchor.
    shared = {oid: yaml_value(value) for oid, value in _shared_values(recording).items()}
    for task in dag.tasks:
        call = recording.calls[task.task_id]
        params = {
            k: shared[id(v)] if id(v) in shared else yaml_value(v)
            for k, v in call.kwargs.items()
            if k not in ("task_id", "task_group")
        }
        entry: dict[str, Any] = {"operator": f"{call.cls.__module__}.{call.cls.__name__}", **params}
        if call.expand is not None:
            entry["expand"] = yaml_value(call.expand)
        if task.upstream_task_ids:
            entry["dependencies"] = sorted(task.upstream_task_ids)
        tasks[task.task_id] = entry
    config["tasks"] = tasks
    return {dag.dag_id: config}


# --- writing the three forms --------------------------------------------------------------------------------


def generate(
    n: int, folder: Path, document: Callable[[int], dict[str, Any]] = spec_document
) -> dict[str, Any]:
    """FOLDER/handsoff (specs + the loader file), FOLDER/python (one DAG file per pipeline) and
    FOLDER/dagfactory (one YAML per pipeline + one loader file); returns the shape of one pipeline's DAGs.
    """
    import yaml

    shutil.rmtree(folder, ignore_errors=True)
    specs = folder / "handsoff" / "specs"
    write_specs(specs, [document(i) for i in range(n)])
    (folder / "handsoff" / "dags").mkdir(parents=True)
    shutil.copy(HANDSOFF_DAG_FILE, folder / "handsoff" / "dags" / HANDSOFF_DAG_FILE.name)
    python_dags = folder / "python" / "dags"
    python_dags.mkdir(parents=True)
    yaml_dir = folder / "dagfactory" / "configs"
    yaml_dir.mkdir(parents=True)
    (folder / "dagfactory" / "dags").mkdir()
    (folder / "dagfactory" / "dags" / "dagfactory_pipelines.py").write_text(DAGFACTORY_LOADER)
    built = record(specs)
    by_pipeline: dict[str, list[tuple[Any, Recording]]] = {}
    for dag, recording in built:
        pid = dag.dag_id.split("__", 1)[0]  # a pipeline's companion DAGs are named <pipeline>__<what>
        by_pipeline.setdefault(pid, []).append((dag, recording))
    for pid, pairs in by_pipeline.items():
        (python_dags / f"{pid.replace('-', '_')}.py").write_text(python_source(pairs))
        config: dict[str, Any] = {}
        for dag, recording in pairs:
            config.update(dagfactory_config(dag, recording))
        text = yaml.dump(config, Dumper=_DUMPER, sort_keys=False, width=120, allow_unicode=True)
        (yaml_dir / f"{pid}.yaml").write_text(text)
    first = by_pipeline[pipeline_id(0)]
    return {
        "dags_per_pipeline": len(first),
        "dag_ids": [dag.dag_id for dag, _ in first],
        **{f"{dag.dag_id.replace(pipeline_id(0), 'pipeline')}": task_counts(dag) for dag, _ in first},
    }


def _yaml_dumper() -> Any:
    import yaml

    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when PyYAML has it: same YAML, faster


_DUMPER = _yaml_dumper()


def task_counts(dag: Any) -> dict[str, int]:
    """Tasks in the DAG, mapped tasks among them, and task instances of a run (mapped ones expanded)."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    mapped = [t for t in dag.tasks if isinstance(t, MappedOperator)]
    expanded = sum(len(next(iter(t.expand_input.value.values()))) for t in mapped)
    edges = sum(len(t.downstream_task_ids) for t in dag.tasks)
    return {
        "tasks": len(dag.tasks),
        "mapped_tasks": len(mapped),
        "task_instances": len(dag.tasks) - len(mapped) + expanded,
        "edges": edges,
        "task_groups": len(dag.task_group.get_task_group_dict()) - 1,
    }


if __name__ == "__main__":
    print(json.dumps(generate(int(sys.argv[1]), Path(sys.argv[2]))))
