"""Hostile specs (property-based): validation never crashes, never hangs, and good specs load beside them."""

from __future__ import annotations

import copy
import json
import string
from pathlib import Path
from typing import Any

from handsoff.spec import SpecErrors, load_all, load_pipeline
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.specs import ISSUE_EXAMPLE

TEMPLATE = {"tags": ["orders"], "owners": ["sre"]}
GOOD = {**ISSUE_EXAMPLE, "pipeline": "good-one"}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=string.printable + "éß字💥\u202e\x00", max_size=40),
    st.just("9" * 5000),
    st.just("${target.nope}"),
    st.just("$(rm -rf ~)`reboot`\n"),
)


def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4))


values = st.recursive(scalars, _containers, max_leaves=12)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every container path in a document (where a mutation can land)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


def _at(doc: Any, path: tuple) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """The issue's example with 1–4 random mutations: wrong types, missing and unknown keys, empty
    lists, duplicated entries, huge and unicode values, deep nesting."""
    doc = copy.deepcopy(ISSUE_EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if isinstance(_at(doc, p), dict | list)]
        path = draw(st.sampled_from(paths))
        node = _at(doc, path)
        action = draw(st.sampled_from(["replace", "delete", "add", "empty", "duplicate", "nest"]))
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node, key=str)))
            if action == "delete":
                del node[key]
            elif action == "add":
                node[draw(st.text(max_size=12))] = draw(values)
            elif action == "empty":
                node[key] = draw(st.sampled_from([[], {}, "", 0]))
            elif action == "nest":
                deep: Any = draw(values)
                for _ in range(draw(st.integers(50, 400))):
                    deep = {"x": deep}
                node[key] = deep
            else:
                node[key] = draw(values)
        elif isinstance(node, list) and node:
            index = draw(st.integers(0, len(node) - 1))
            if action == "duplicate":
                node.append(copy.deepcopy(node[index]))
            elif action == "delete":
                del node[index]
            elif action == "empty":
                node.clear()
            else:
                node[index] = draw(values)
    return doc


def _write(root: Path, name: str, doc: Any) -> Path:
    path = root / name
    path.write_text(json.dumps(doc, ensure_ascii=False, allow_nan=True))
    return path


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=mutated_specs())
def test_a_mutated_spec_loads_or_fails_with_our_error_only(tmp_path_factory, doc):
    root = tmp_path_factory.mktemp("specs")
    (root / "templates").mkdir()
    _write(root / "templates", "service.json", TEMPLATE)
    bad = _write(root, "mutated.json", doc)
    _write(root, "good-one.json", GOOD)

    try:
        load_pipeline(bad, root)
    except SpecErrors as err:
        assert err.issues
        for issue in err.issues:
            assert issue.file == str(bad)
            assert issue.path.startswith("$")
            assert issue.message and "\n" not in str(issue)
    result = load_all(root)
    assert "good-one" in result.pipelines  # the good spec loads beside it
    assert all(issue.file == str(bad) for issue in result.errors)


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=string.printable + '{}[]":,字\x00', max_size=300))
def test_arbitrary_text_is_refused_with_a_clear_error(tmp_path_factory, text):
    root = tmp_path_factory.mktemp("specs")
    path = root / "noise.json"
    path.write_text(text)
    try:
        load_pipeline(path, root)
    except SpecErrors as err:
        assert all(issue.file == str(path) and issue.path.startswith("$") for issue in err.issues)


def test_unusable_template_paths_are_spec_errors(tmp_path):
    root = tmp_path / "specs"
    root.mkdir()
    for entry in ("9" * 5000, "a\x00b.json"):
        spec = {**GOOD, "extends": [entry]}
        path = _write(root, "weird.json", spec)
        try:
            load_pipeline(path, root)
        except SpecErrors as err:
            [issue] = err.issues
            assert issue.path == "$.extends[0]" and "cannot be used" in issue.message
        else:
            raise AssertionError("an unusable template path loaded")
