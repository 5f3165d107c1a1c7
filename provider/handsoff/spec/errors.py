"""Errors of the spec layer: every problem is a SpecIssue naming a file and a JSON path."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_PATH_PART = re.compile(r"\[(\d+)\]|\.([A-Za-z0-9_-]+)|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]")


class SpecError(ValueError):
    """Root of every error raised by the spec layer."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in one spec file, at a JSON path like ``$.stages[0].waves[1].name``."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class SpecErrors(SpecError):
    """One or more spec issues; ``str()`` gives one issue per line."""

    def __init__(self, issues: Iterable[SpecIssue]) -> None:
        self.issues: list[SpecIssue] = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def child_path(path: str, key: str | int) -> str:
    """The JSON path of `key` (an object key or a list index) under `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


def json_path(parts: Iterable[str | int]) -> str:
    """``$`` followed by the given keys and indexes."""
    path = "$"
    for part in parts:
        path = child_path(path, part)
    return path


def parts_sort_key(parts: Iterable[str | int]) -> list[tuple[bool, str | int]]:
    """Sort key putting JSON paths in document-ish order (indexes numerically)."""
    return [(isinstance(part, str), part) for part in parts]


def path_parts(path: str) -> list[str | int]:
    """The keys and indexes of a JSON path made by ``json_path`` (inverse of it)."""
    parts: list[str | int] = []
    for index, key, quoted in _PATH_PART.findall(path):
        parts.append(int(index) if index else key or ast.literal_eval(quoted))
    return parts


def path_sort_key(path: str) -> list[tuple[bool, str | int]]:
    """``parts_sort_key`` for a JSON path string made by ``json_path``."""
    return parts_sort_key(path_parts(path))
