"""Schema and semantic checks; every problem becomes a SpecIssue with a JSON path."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from handsoff.spec.errors import SpecIssue, child_path, json_path, parts_sort_key
from handsoff.spec.fastschema import Check, compile_check

SCHEMA_FILE = "pipeline.schema.json"
REMOVAL_KEYS = frozenset({"name", "remove"})
RESERVED_TARGET_KEYS = ("name", "region", "deploy", "bake", "alarms", "remove")
_NAME_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_ANNOTATIONS = frozenset({"title", "description", "default", "$comment"})
_REQUIRED = re.compile(r"^'(.+)' is a required property$")


@functools.cache
def load_schema() -> dict[str, Any]:
    """The pipeline JSON Schema shipped in this package (read once)."""
    text = resources.files("handsoff.spec").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Copy of a schema node with local ``#/$defs/x`` refs inlined and annotations dropped."""
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/") and len(node) == 1 + sum(key in _ANNOTATIONS for key in node):
        name = ref.removeprefix("#/$defs/")
        if name in seen:
            raise ValueError(f"recursive $ref {ref} cannot be inlined")
        return _inline(defs[name], defs, (*seen, name))
    result = {}
    for key, value in node.items():
        if key in _NAME_MAPS:
            result[key] = {name: _inline(sub, defs, seen) for name, sub in value.items()}
        elif key not in _ANNOTATIONS:
            result[key] = _inline(value, defs, seen)
    return result


def _without_required(node: Any) -> Any:
    """Copy of a schema node with every ``required`` keyword removed (for templates).

    Conditions (``if``) keep theirs: they choose a branch, they do not demand a key.
    """
    if isinstance(node, list):
        return [_without_required(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: {name: _without_required(sub) for name, sub in value.items()}
        if key in _NAME_MAPS
        else value
        if key == "if"
        else _without_required(value)
        for key, value in node.items()
        if key != "required"
    }


@functools.cache
def validator(partial: bool = False) -> Draft202012Validator:
    """The compiled validator: the full schema, or the `partial` one (no ``required``) for templates.

    Local refs are inlined once: jsonschema resolves each ``$ref`` on every use, which doubles the cost.
    """
    schema = load_schema()
    try:
        compiled = _inline({k: v for k, v in schema.items() if k != "$defs"}, schema.get("$defs", {}))
    except ValueError:
        compiled = schema
    return Draft202012Validator(_without_required(compiled) if partial else compiled)


@functools.cache
def _pattern_messages() -> dict[str, str]:
    defs = load_schema()["$defs"]
    return {
        defs["duration"]["pattern"]: "is not a duration like 30s, 5m, 1h or 2d",
        defs["name"]["pattern"]: (
            "is not a valid name: letters, digits, '-' and '_', starting with a letter or digit, "
            "at most 63 characters"
        ),
        defs["clock"]["pattern"]: "is not a time like 09:00 (00:00-23:59, or 24:00 as an end)",
        defs["windowBound"]["pattern"]: "is not a date (2026-12-21) or local date-time (2026-12-21T09:00)",
    }


@functools.cache
def fast_check(partial: bool = False) -> Check | None:
    """The compiled yes/no check of the same schema as ``validator(partial)`` (None: not compilable)."""
    checker = validator(partial)
    if checker.format_checker is not None:  # formats asserted: only jsonschema knows them
        return None
    return compile_check(checker.schema)


def schema_issues(document: Any, file: str, *, partial: bool = False) -> list[SpecIssue]:
    """Every schema violation in `document`, sorted by JSON path.

    A document the compiled check accepts has none; only the others take jsonschema's slower walk.
    """
    check = fast_check(partial)
    if check is not None and check(document):
        return []
    found = []
    for error in validator(partial).iter_errors(document):
        found.extend(_explain(error))
    found.sort(key=lambda item: parts_sort_key(item[0]))
    return [SpecIssue(file, json_path(parts), message) for parts, message in found]


def _explain(error: ValidationError) -> Iterator[tuple[list[str | int], str]]:
    """(path parts, message) pairs for one jsonschema error, with clearer messages where we can."""
    parts = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        for key in _unknown_keys(error.instance, error.schema):
            yield [*parts, key], _unknown_key_message(key, error.schema)
        return
    if error.validator == "required":
        match = _REQUIRED.match(error.message)
        if match:
            yield parts, f"missing required key {match.group(1)!r}"
            return
    if error.validator == "pattern" and error.validator_value in _pattern_messages():
        yield parts, f"{error.instance!r} {_pattern_messages()[error.validator_value]}"
        return
    yield parts, error.message


def _unknown_keys(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    allowed = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return sorted(
        key
        for key in instance
        if key not in allowed and not any(re.search(pattern, key) for pattern in patterns)
    )


def _unknown_key_message(key: str, schema: dict[str, Any]) -> str:
    allowed = list(schema.get("properties", {}))
    return removal_key_message(key) if set(allowed) == REMOVAL_KEYS else unknown_key_message(key, allowed)


def removal_key_message(key: str) -> str:
    """The message for a key other than name/remove in a ``{"name": ..., "remove": true}`` entry."""
    return f"unknown key {key!r}: an entry with \"remove\": true takes only 'name' and 'remove'"


def unknown_key_message(key: str, allowed: list[str]) -> str:
    """``unknown key 'bkae' (did you mean 'bake'?)`` when a close match exists."""
    close = _closest(key, allowed)
    return f"unknown key {key!r} (did you mean {close!r}?)" if close else f"unknown key {key!r}"


def _closest(key: str, allowed: list[str] | tuple[str, ...], cutoff: float = 0.6) -> str | None:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=cutoff)
    return close[0] if close else None


def semantic_issues(
    document: dict[str, Any], file: str, where: Callable[[str], str] = lambda path: f"at {path}"
) -> list[SpecIssue]:
    """Checks the schema cannot express: unique names, near-miss custom target keys, window names.

    Call only on a document that passed the full schema. Deployer checks live in resolve.py.
    Issues come grouped by check; the loader sorts them by path. `where` describes a path in a
    message (the loader maps merged paths back to the spec file).
    """
    issues: list[SpecIssue] = []
    steps = document["build"].get("steps", [])
    issues += _duplicates("build step", _named(steps, "$.build.steps"), file, where)
    stages = _named(document["stages"], "$.stages")
    waves, targets = [], []
    for stage_path, stage in stages:
        tests = _named(stage.get("tests", []), f"{stage_path}.tests")
        issues += _duplicates("test", tests, file, where)
        issues += _window_reference(document, stage, stage_path, file)
        for wave_path, wave in _named(stage["waves"], f"{stage_path}.waves"):
            waves.append((wave_path, wave))
            issues += _window_reference(document, wave, wave_path, file)
            if _reserved_in_stage(wave["name"]):
                message = f"wave name {wave['name']!r} is reserved for the stage's own tasks (bake, test_*)"
                issues.append(SpecIssue(file, f"{wave_path}.name", message))
            targets += _named(wave["targets"], f"{wave_path}.targets")
    issues += _window_reference(document, document.get("schedule", {}), "$.schedule", file)
    issues += _duplicates("stage", stages, file, where)
    issues += _duplicates("wave", waves, file, where)
    issues += _duplicates("target", targets, file, where)
    for target_path, target in targets:
        issues += _near_misses(target, target_path, file)
    return issues


def _window_reference(
    document: dict[str, Any], node: dict[str, Any], path: str, file: str
) -> list[SpecIssue]:
    """An issue when `node` names a `window` that `windows` does not define."""
    name, defined = node.get("window"), list(document.get("windows", {}))
    if name is None or name in defined:
        return []
    close = _closest(name, defined)
    hint = f"windows: {', '.join(defined)}" if defined else "none defined"
    hint = f"did you mean {close!r}?" if close else hint
    return [SpecIssue(file, f"{path}.window", f"unknown window {name!r}: not in $.windows ({hint})")]


def _reserved_in_stage(name: str) -> bool:
    """Wave groups share the stage's namespace with its `bake` and `test_<name>` tasks."""
    return name == "bake" or name.startswith("test_")


def _named(items: list[dict[str, Any]], path: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path}[{index}]", item) for index, item in enumerate(items)]


def _duplicates(
    kind: str, entries: list[tuple[str, dict[str, Any]]], file: str, where: Callable[[str], str]
) -> list[SpecIssue]:
    first: dict[str, str] = {}
    issues = []
    for path, entry in entries:
        name = entry["name"]
        if name in first:
            message = f"duplicate {kind} name {name!r} (first used {where(first[name])})"
            issues.append(SpecIssue(file, f"{path}.name", message))
        else:
            first[name] = path
    return issues


def _near_misses(target: dict[str, Any], path: str, file: str) -> list[SpecIssue]:
    """Custom target fields whose name is one typo away from a reserved key."""
    issues = []
    for key in target:
        close = None if key in RESERVED_TARGET_KEYS else _closest(key, RESERVED_TARGET_KEYS, cutoff=0.75)
        if close:
            message = f"unknown key {key!r} (did you mean {close!r}?)"
            issues.append(SpecIssue(file, child_path(path, key), message))
    return issues
