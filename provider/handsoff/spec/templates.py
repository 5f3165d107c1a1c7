"""``extends``: finding templates under the specs root, and merging documents layer by layer.

Merge rule (``merge``): objects merge key by key, recursively. A list whose items are all objects
with a string "name" merges by name: inherited order is kept, an entry with an inherited name is
merged into that entry in place, new names are appended, and ``{"name": X, "remove": true}``
deletes the inherited X (an error when nothing inherited is named X). Every other value, including
an empty list, replaces the inherited one. A layer's "extends" is never inherited.

Resolution order (``TemplateSet.layers``): depth first, each template after its own templates, in
list order; a template reached twice (a diamond) is applied once, at its first place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handsoff.spec.errors import SpecErrors, SpecIssue, child_path
from handsoff.spec.files import read_spec
from handsoff.spec.validate import REMOVAL_KEYS, removal_key_message, schema_issues

_MISSING: Any = object()


Origins = dict[int, list[int | None]]  # id(merged named list) → layer index of each item (None: inherited)


def merge(
    base: dict[str, Any], layer: dict[str, Any], file: str, origins: Origins | None = None
) -> tuple[dict[str, Any], list[SpecIssue]]:
    """`layer` (from `file`) merged on top of `base`; neither input is modified.

    Returns the merged document (sharing unchanged sub-values with the inputs) and the issues
    of `layer`: remove entries that match nothing inherited. Pass `origins` to record where the
    items of merged named lists come from (for ``layer_path``).
    """
    issues: list[SpecIssue] = []
    top = {key: value for key, value in base.items() if key != "extends"}
    return _merge_object(top, layer, "$", _Context(file, issues, origins)), issues


def layer_path(merged: Any, layer: Any, parts: list[str | int], origins: Origins) -> list[str | int] | None:
    """Where the merged value at `parts` is written in `layer`; None when only templates set it."""
    found: list[str | int] = []
    for part in parts:
        if isinstance(merged, dict) and isinstance(layer, dict) and part in layer:
            merged, layer = merged.get(part), layer[part]
        elif isinstance(merged, list) and isinstance(layer, list) and isinstance(part, int):
            mapped = origins[id(merged)][part] if id(merged) in origins else part
            if mapped is None or mapped >= len(layer):
                return None
            merged, layer, part = merged[part], layer[mapped], mapped
        else:
            return None
        found.append(part)
    return found


@dataclass(frozen=True)
class _Context:
    file: str
    issues: list[SpecIssue]
    origins: Origins | None


def _merge_value(base: Any, value: Any, path: str, ctx: _Context) -> Any:
    if isinstance(value, dict):
        return _merge_object(base if isinstance(base, dict) else {}, value, path, ctx)
    if isinstance(value, list) and value and _is_named(value):
        inherited = base if isinstance(base, list) and _is_named(base) else []
        return _merge_named(inherited, value, path, ctx)
    return value


def _merge_object(base: dict[str, Any], value: dict[str, Any], path: str, ctx: _Context) -> dict[str, Any]:
    result = dict(base)
    for key, item in value.items():
        if isinstance(item, dict | list):
            result[key] = _merge_value(base.get(key, _MISSING), item, child_path(path, key), ctx)
        else:  # a scalar replaces: no path needed
            result[key] = item
    return result


def _is_named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in items)


def _merge_named(
    base: list[dict[str, Any]], entries: list[dict[str, Any]], path: str, ctx: _Context
) -> list[Any]:
    """Merge a named list; a name matches at most one inherited entry, so repeats stay visible."""
    result: list[Any] = list(base)
    sources: list[int | None] = [None] * len(base)
    inherited = {item["name"]: index for index, item in enumerate(base)}
    for index, entry in enumerate(entries):
        entry_path = f"{path}[{index}]"
        position = inherited.pop(entry["name"], None)
        if entry.get("remove") is not True:
            if position is None:
                result.append(_merge_value(_MISSING, entry, entry_path, ctx))
                sources.append(index)
            else:
                result[position] = _merge_value(result[position], entry, entry_path, ctx)
                sources[position] = index
        elif position is None:
            message = f"removes {entry['name']!r} but nothing inherited has that name"
            ctx.issues.append(SpecIssue(ctx.file, entry_path, message))
        else:
            result[position] = _MISSING
            for key in sorted(entry.keys() - REMOVAL_KEYS):  # the schema never sees it: check here
                ctx.issues.append(SpecIssue(ctx.file, child_path(entry_path, key), removal_key_message(key)))
    kept = [index for index, item in enumerate(result) if item is not _MISSING]
    merged = [result[index] for index in kept]
    if ctx.origins is not None:
        ctx.origins[id(merged)] = [sources[index] for index in kept]
    return merged


@dataclass(frozen=True)
class Layer:
    """One parsed template: its display path and document (None when unreadable)."""

    file: str
    document: dict[str, Any] | None


class TemplateSet:
    """The templates of one specs root, each read and validated (partial schema) at most once."""

    def __init__(self, specs_root: Path | str) -> None:
        self.root = Path(specs_root)
        self._real_root = self.root.resolve()
        self._entries: dict[str, Path | str] = {}
        self._layers: dict[Path, tuple[Layer, list[SpecIssue]]] = {}
        self._expansions: dict[Path, tuple[list[Path], list[SpecIssue]]] = {}

    def layers(self, spec_file: Path | str, document: dict[str, Any]) -> tuple[list[Layer], list[SpecIssue]]:
        """Templates to merge under `document` (from `spec_file`), in order, and their issues."""
        issues: list[SpecIssue] = []
        order = self._extends(str(spec_file), document, (Path(spec_file).resolve(),), issues)
        return [self._layers[key][0] for key in order], list(dict.fromkeys(issues))

    def _extends(
        self, file: str, document: dict[str, Any], stack: tuple[Path, ...], issues: list[SpecIssue]
    ) -> list[Path]:
        entries = document.get("extends")
        if not isinstance(entries, list):
            return []  # the schema reports a malformed "extends"
        order: list[Path] = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, str) or not entry:
                continue
            found = self._locate(entry)
            path = f"$.extends[{index}]"
            if isinstance(found, str):
                issues.append(SpecIssue(file, path, found))
            elif found in stack:
                chain = " -> ".join(self._name(key) for key in (*stack[stack.index(found) :], found))
                issues.append(SpecIssue(file, path, f"extends cycle: {chain}"))
            else:
                keys, found_issues = self._expand(found, stack)
                order += keys
                issues += found_issues
        return list(dict.fromkeys(order))

    def _expand(self, key: Path, stack: tuple[Path, ...]) -> tuple[list[Path], list[SpecIssue]]:
        """Template `key` after its own templates, depth first (cached)."""
        if key not in self._expansions:
            layer, issues = self._read(key)
            issues = list(issues)
            order = []
            if layer.document is not None:
                order = self._extends(layer.file, layer.document, (*stack, key), issues)
            self._expansions[key] = ([*order, key], issues)
        return self._expansions[key]

    def _read(self, key: Path) -> tuple[Layer, list[SpecIssue]]:
        if key not in self._layers:
            file = str(self.root / key.relative_to(self._real_root))
            try:
                document = read_spec(key)
            except SpecErrors as exc:
                issues = [SpecIssue(file, issue.path, issue.message) for issue in exc.issues]
                self._layers[key] = Layer(file, None), issues
            else:
                self._layers[key] = Layer(file, document), schema_issues(document, file, partial=True)
        return self._layers[key]

    def _locate(self, entry: str) -> Path | str:
        """The real path of template `entry`, or why it cannot be used (cached per entry)."""
        if entry not in self._entries:
            try:
                self._entries[entry] = self._check(entry)
            except (OSError, ValueError) as exc:  # a name too long, a NUL byte, a loop of symlinks
                why = exc.__class__.__name__
                self._entries[entry] = f"template path {entry[:80]!r} cannot be used: {why}"
        return self._entries[entry]

    def _check(self, entry: str) -> Path | str:
        if Path(entry).is_absolute():
            return f"template path {entry!r} must be relative to the specs root"
        real = (self._real_root / entry).resolve()
        if not real.is_relative_to(self._real_root):
            return f"template {entry!r} is outside the specs root {str(self.root)!r}"
        if not real.is_file():
            return f"template {entry!r} not found under the specs root {str(self.root)!r}"
        return real

    def _name(self, key: Path) -> str:
        return (
            key.relative_to(self._real_root).as_posix() if key.is_relative_to(self._real_root) else str(key)
        )
