"""A compiled yes/no check of a JSON Schema: valid documents skip jsonschema's slow walk.

jsonschema walks every schema node for every document and creates a validator object per node visited:
about 2 ms for the README's example spec, most of the spec layer's share of a DAG file's parse.
``compile_check`` turns the schema into nested closures once; a document they accept is valid, and only a
document they reject goes through jsonschema, for its messages (validate.py).

Draft 2020-12 keywords as jsonschema implements them (no format assertion, like our validator; booleans
are not numbers; ``1.0`` is an integer; ``enum``/``const``/``uniqueItems`` tell ``true`` from ``1``).
A schema with any other keyword, or a ``$ref`` left after inlining, is not compiled (``None``): the caller
then uses jsonschema alone, so this check is never less strict than jsonschema.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "$comment",
        "examples",
        "$schema",
        "$id",
        "$defs",
        "deprecated",
        "format",
    }
)
_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    ),
}


class _Unsupported(Exception):
    pass


def compile_check(schema: Any) -> Check | None:
    """A function telling whether a document is valid against `schema`; None when it cannot be compiled."""
    try:
        return _compile(schema)
    except _Unsupported:
        return None


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality as jsonschema sees it: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return a == b


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda _: True
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(check(v) for check in checks)


def _compile(schema: Any) -> Check:
    if schema is True:
        return lambda _: True
    if schema is False:
        return lambda _: False
    if not isinstance(schema, dict):
        raise _Unsupported(schema)
    checks: list[Check] = []
    for key, value in schema.items():
        if key in _ANNOTATIONS or key in ("then", "else"):
            continue
        build = _KEYWORDS.get(key)
        if build is None:
            raise _Unsupported(key)
        checks.append(build(value, schema))
    return _all(checks)


def _type(value: Any, _: dict[str, Any]) -> Check:
    names = [value] if isinstance(value, str) else list(value)
    if any(name not in _TYPES for name in names):
        raise _Unsupported(value)
    tests = [_TYPES[name] for name in names]
    return tests[0] if len(tests) == 1 else lambda v: any(test(v) for test in tests)


def _properties(value: dict[str, Any], _: dict[str, Any]) -> Check:
    subs = [(name, _compile(sub)) for name, sub in value.items()]

    def check(v: Any) -> bool:
        return not isinstance(v, dict) or all(name not in v or sub(v[name]) for name, sub in subs)

    return check


def _pattern_properties(value: dict[str, Any], _: dict[str, Any]) -> Check:
    subs = [(re.compile(pattern), _compile(sub)) for pattern, sub in value.items()]

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        return all(sub(item) for key, item in v.items() for regex, sub in subs if regex.search(key))

    return check


def _additional_properties(value: Any, schema: dict[str, Any]) -> Check:
    known = frozenset(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    sub = _compile(value)

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        return all(
            sub(item)
            for key, item in v.items()
            if key not in known and not any(regex.search(key) for regex in patterns)
        )

    return check


def _required(value: list[str], _: dict[str, Any]) -> Check:
    names = list(value)
    return lambda v: not isinstance(v, dict) or all(name in v for name in names)


def _dependent_required(value: dict[str, list[str]], _: dict[str, Any]) -> Check:
    pairs = [(name, list(needed)) for name, needed in value.items()]
    return lambda v: (
        not isinstance(v, dict) or all(name not in v or all(n in v for n in needed) for name, needed in pairs)
    )


def _dependent_schemas(value: dict[str, Any], _: dict[str, Any]) -> Check:
    subs = [(name, _compile(sub)) for name, sub in value.items()]
    return lambda v: not isinstance(v, dict) or all(name not in v or sub(v) for name, sub in subs)


def _property_names(value: Any, _: dict[str, Any]) -> Check:
    sub = _compile(value)
    return lambda v: not isinstance(v, dict) or all(sub(key) for key in v)


def _items(value: Any, _: dict[str, Any]) -> Check:
    sub = _compile(value)
    return lambda v: not isinstance(v, list) or all(sub(item) for item in v)


def _unique_items(value: bool, _: dict[str, Any]) -> Check:
    if not value:
        return lambda _: True

    def check(v: Any) -> bool:
        if not isinstance(v, list):
            return True
        return not any(json_equal(v[i], v[j]) for i in range(len(v)) for j in range(i + 1, len(v)))

    return check


def _sized(kind: type, compare: Callable[[int, int], bool]) -> Callable[[int, dict[str, Any]], Check]:
    def build(value: int, _: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, kind) or compare(len(v), value)

    return build


def _bound(compare: Callable[[Any, Any], bool]) -> Callable[[Any, dict[str, Any]], Check]:
    def build(value: Any, _: dict[str, Any]) -> Check:
        def check(v: Any) -> bool:
            return isinstance(v, bool) or not isinstance(v, int | float) or compare(v, value)

        return check

    return build


def _pattern(value: str, _: dict[str, Any]) -> Check:
    regex = re.compile(value)
    return lambda v: not isinstance(v, str) or regex.search(v) is not None


def _enum(value: list[Any], _: dict[str, Any]) -> Check:
    options = list(value)
    return lambda v: any(json_equal(v, option) for option in options)


def _const(value: Any, _: dict[str, Any]) -> Check:
    return lambda v: json_equal(v, value)


def _if(value: Any, schema: dict[str, Any]) -> Check:
    condition = _compile(value)
    then = _compile(schema.get("then", True))
    otherwise = _compile(schema.get("else", True))
    return lambda v: then(v) if condition(v) else otherwise(v)


def _all_of(value: list[Any], _: dict[str, Any]) -> Check:
    return _all([_compile(sub) for sub in value])


def _any_of(value: list[Any], _: dict[str, Any]) -> Check:
    subs = [_compile(sub) for sub in value]
    return lambda v: any(sub(v) for sub in subs)


def _one_of(value: list[Any], _: dict[str, Any]) -> Check:
    subs = [_compile(sub) for sub in value]
    return lambda v: sum(1 for sub in subs if sub(v)) == 1


def _not(value: Any, _: dict[str, Any]) -> Check:
    sub = _compile(value)
    return lambda v: not sub(v)


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any]], Check]] = {
    "type": _type,
    "properties": _properties,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "required": _required,
    "dependentRequired": _dependent_required,
    "dependentSchemas": _dependent_schemas,
    "propertyNames": _property_names,
    "items": _items,
    "uniqueItems": _unique_items,
    "minItems": _sized(list, lambda n, limit: n >= limit),
    "maxItems": _sized(list, lambda n, limit: n <= limit),
    "minLength": _sized(str, lambda n, limit: n >= limit),
    "maxLength": _sized(str, lambda n, limit: n <= limit),
    "minProperties": _sized(dict, lambda n, limit: n >= limit),
    "maxProperties": _sized(dict, lambda n, limit: n <= limit),
    "minimum": _bound(lambda v, limit: v >= limit),
    "maximum": _bound(lambda v, limit: v <= limit),
    "exclusiveMinimum": _bound(lambda v, limit: v > limit),
    "exclusiveMaximum": _bound(lambda v, limit: v < limit),
    "pattern": _pattern,
    "enum": _enum,
    "const": _const,
    "if": _if,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
}
