"""The compiled schema check agrees with jsonschema on every document (it only decides who gets messages)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from handsoff.spec.fastschema import compile_check, json_equal
from handsoff.spec.validate import fast_check, validator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from support.repos import EXAMPLES_SPECS
from support.specs import ISSUE_EXAMPLE

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70) | st.sampled_from([1.0, 2.5, -0.5]) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
SAMPLES = st.sampled_from(
    [
        "5m",
        "1h",
        "30s",
        "",
        "alpha",
        "us-east-1",
        "command",
        "lambda",
        "./deploy.sh",
        "09:00",
        "rollback",
        None,
        0,
        4,
    ]
)


def _documents() -> list[dict[str, Any]]:
    docs = [copy.deepcopy(ISSUE_EXAMPLE)]
    docs += [json.loads(p.read_text()) for p in sorted(Path(EXAMPLES_SPECS).rglob("*.json"))]
    return docs


def test_the_shipped_schema_compiles_full_and_partial():
    assert fast_check(False) is not None
    assert fast_check(True) is not None


@pytest.mark.parametrize("partial", [False, True])
def test_shipped_documents_agree(partial):
    for document in _documents():
        assert fast_check(partial)(document) == validator(partial).is_valid(document)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """An example document with a few random changes: values replaced, keys added or deleted."""
    document = copy.deepcopy(draw(st.sampled_from(_documents())))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)[1:]))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "sample", "delete", "add_key", "empty"]))
        if action == "replace":
            parent[last] = draw(JSON)
        elif action == "sample":
            parent[last] = draw(SAMPLES)
        elif action == "delete":
            del parent[last]
        elif action == "add_key" and isinstance(parent[last], dict):
            parent[last][draw(st.sampled_from(["bake", "deploy", "extra", "alarms", "region", "x"]))] = draw(
                SAMPLES
            )
        elif action == "empty":
            parent[last] = type(parent[last])() if isinstance(parent[last], list | dict | str) else None
    return document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_documents_agree(document, partial):
    assert fast_check(partial)(document) == validator(partial).is_valid(document)


KEYWORD_SCHEMAS = [
    {"type": "integer"},
    {"type": ["number", "null"]},
    {"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}, "required": ["a"]},
    {"patternProperties": {"^x": {"type": "boolean"}}, "additionalProperties": False},
    {
        "properties": {"a": True},
        "additionalProperties": {"type": "integer", "minimum": 2, "exclusiveMaximum": 9},
    },
    {"items": {"enum": [1, "1", True, None, [1]]}, "uniqueItems": True, "minItems": 1, "maxItems": 2},
    {"const": {"a": [1, 2.0]}},
    {"if": {"type": "string"}, "then": {"pattern": "^a"}, "else": {"type": "array"}},
    {"anyOf": [{"type": "string"}, {"maximum": 3}], "not": {"const": 2}},
    {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
    {"dependentRequired": {"a": ["b"]}, "dependentSchemas": {"c": {"required": ["d"]}}},
    {"propertyNames": {"maxLength": 1}, "minProperties": 1, "maxProperties": 2},
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KEYWORD_SCHEMAS), JSON)
def test_each_keyword_agrees_with_jsonschema(schema, value):
    assert compile_check(schema)(value) == Draft202012Validator(schema).is_valid(value)


def test_booleans_are_not_numbers_and_one_point_zero_is_an_integer():
    integer = compile_check({"type": "integer"})
    assert not integer(True)
    assert integer(1.0)
    assert not compile_check({"enum": [1]})(True)
    assert compile_check({"uniqueItems": True})([1, True])
    assert json_equal([1, {"a": 2}], [1.0, {"a": 2.0}])


def test_unknown_keywords_and_refs_are_not_compiled():
    assert compile_check({"type": "object", "unevaluatedProperties": False}) is None
    assert compile_check({"$ref": "#/$defs/x", "$defs": {"x": {}}}) is None
