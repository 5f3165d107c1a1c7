"""Reading spec files and finding them on disk; no validation beyond "a JSON object"."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from handsoff.spec.errors import SpecErrors, SpecIssue

MAX_SPEC_BYTES = 1024 * 1024
TEMPLATES_DIR = "templates"
_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _fail(path: Path | str, message: str) -> SpecErrors:
    return SpecErrors([SpecIssue(str(path), "$", message)])


def _read_text(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > MAX_SPEC_BYTES:
                raise _fail(path, f"spec file is {size} bytes; the limit is {MAX_SPEC_BYTES}")
            data = stream.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise _fail(path, f"cannot read the file: {exc.strerror or exc}") from exc
    if len(data) > MAX_SPEC_BYTES:  # grew while we were reading it
        raise _fail(path, f"spec file is over {MAX_SPEC_BYTES} bytes; the limit is {MAX_SPEC_BYTES}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"not UTF-8: byte {data[exc.start]:#04x} at offset {exc.start}") from exc


def read_spec(path: Path | str) -> dict[str, Any]:
    """Parse one spec (or template) file into a dict; raises SpecErrors with the reason."""
    return read_spec_text(path, _read_text(Path(path)))


def read_spec_text(path: Path | str, text: str) -> dict[str, Any]:
    """Parse the text of spec file `path`; raises SpecErrors with the reason."""
    if not text.strip():
        raise _fail(path, "empty file")
    try:
        document = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except _DuplicateKey as exc:
        raise _fail(path, f"invalid JSON: key {exc.key!r} appears twice in one object") from exc
    except RecursionError as exc:
        raise _fail(path, "invalid JSON: nested too deeply") from exc
    if not isinstance(document, dict):
        raise _fail(path, f"the top level must be a JSON object, not {_JSON_TYPES[type(document)]}")
    return document


def find_spec_files(root: Path | str) -> list[Path]:
    """Every ``*.json`` under `root`, recursively and sorted, except those in ``root/templates/``."""
    root = Path(root)
    found = []
    for folder, subfolders, names in os.walk(root):
        if folder == str(root) and TEMPLATES_DIR in subfolders:
            subfolders.remove(TEMPLATES_DIR)
        found.extend(Path(folder, name) for name in names if name.endswith(".json"))
    return sorted(found)


def specs_root_for(spec_file: Path | str) -> Path:
    """The specs root of a lone spec file: the nearest ancestor holding ``templates/``, else its folder."""
    folder = Path(spec_file).parent
    if (folder / TEMPLATES_DIR).is_dir():
        return folder
    for candidate in folder.absolute().parents:
        if (candidate / TEMPLATES_DIR).is_dir():
            return candidate
    return folder


def _pipeline_id(path: Path, hint: str | None = None) -> str | None:
    """The top-level "pipeline" of a spec file, or None; skips parsing when `hint` cannot occur."""
    try:
        text = _read_text(path)
        if hint is not None and hint not in text and "\\u" not in text:
            return None
        value = read_spec_text(path, text).get("pipeline")
    except SpecErrors:
        return None
    return value if isinstance(value, str) else None


def pipeline_file_for(specs_root: Path | str, pipeline_id: str) -> Path | None:
    """The spec file defining `pipeline_id`: ``<id>.json`` files first, then every other spec file.

    Reads only what it must; does not detect an id defined twice (``load_all`` does).
    """
    root = Path(specs_root)
    direct = root / f"{pipeline_id}.json"
    if direct.is_file() and _pipeline_id(direct) == pipeline_id:
        return direct
    files = find_spec_files(root)
    named = [path for path in files if path.stem == pipeline_id and path != direct]
    others = [path for path in files if path.stem != pipeline_id]
    for path in named + others:
        if _pipeline_id(path, hint=pipeline_id) == pipeline_id:
            return path
    return None
