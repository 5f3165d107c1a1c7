"""Loading pipelines: read → extends/merge → schema → semantic checks → model, collecting every issue."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from handsoff.model.pipeline import DEFAULT_AWS_CONN_ID, Pipeline
from handsoff.spec.errors import SpecErrors, SpecIssue, json_path, path_parts, path_sort_key
from handsoff.spec.files import find_spec_files, read_spec, specs_root_for
from handsoff.spec.resolve import resolve_pipeline, resolve_repo
from handsoff.spec.templates import Origins, TemplateSet, layer_path, merge
from handsoff.spec.validate import schema_issues, semantic_issues


@dataclass
class LoadResult:
    """Valid pipelines by id, and the issues of every file that did not load."""

    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    errors: list[SpecIssue] = field(default_factory=list)


@dataclass
class _Outcome:
    file: Path
    pipeline_id: str | None = None
    pipeline: Pipeline | None = None
    issues: list[SpecIssue] = field(default_factory=list)


def load_pipeline(path: Path | str, specs_root: Path | str | None = None) -> Pipeline:
    """Load one spec file; templates resolve against `specs_root` (default: the file's folder).

    Raises SpecErrors listing every issue.
    """
    path = Path(path)
    outcome = _load(path, TemplateSet(path.parent if specs_root is None else specs_root))
    if outcome.pipeline is None:
        raise SpecErrors(outcome.issues)
    return outcome.pipeline


def load_all(specs_root: Path | str) -> LoadResult:
    """Every spec under `specs_root` (``templates/`` excluded); an id defined twice loads nowhere."""
    root = Path(specs_root)
    if not root.is_dir():
        return LoadResult(errors=[SpecIssue(str(root), "$", "specs folder not found")])
    templates = TemplateSet(root)
    with _gc_paused():
        return _combine([_load(path, templates) for path in find_spec_files(root)])


def load_paths(paths: Iterable[Path | str]) -> LoadResult:
    """Load spec files and folders (as ``load_all``); a lone file's root is ``specs_root_for`` it."""
    template_sets: dict[Path, TemplateSet] = {}
    outcomes: dict[Path, _Outcome] = {}
    for given in map(Path, paths):
        if given.is_dir():
            pairs = [(file, given) for file in find_spec_files(given)]
        elif given.exists():
            pairs = [(given, specs_root_for(given))]
        else:
            missing = SpecIssue(str(given), "$", "no such file or folder")
            outcomes[given.absolute()] = _Outcome(given, issues=[missing])
            continue
        for file, root in pairs:
            key, real_root = file.resolve(), root.resolve()
            if key not in outcomes:
                if real_root not in template_sets:
                    template_sets[real_root] = TemplateSet(root)
                with _gc_paused():
                    outcomes[key] = _load(file, template_sets[real_root])
    return _combine(outcomes.values())


def validate_paths(paths: Iterable[Path | str]) -> list[SpecIssue]:
    """Every issue in the given spec files and folders (what ``handsoff validate`` prints)."""
    return load_paths(paths).errors


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading, then restore its previous state.

    Loading creates no reference cycles, but jsonschema allocates a validator object per schema
    node visited; the collections this churn triggers cost about a quarter of load_all's time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(path: Path, templates: TemplateSet) -> _Outcome:
    """Load one file, never raising: issues are collected in the outcome."""
    try:
        document = read_spec(path)
    except SpecErrors as exc:
        return _Outcome(path, issues=exc.issues)
    pipeline_id = document.get("pipeline")
    outcome = _Outcome(path, pipeline_id if isinstance(pipeline_id, str) else None)
    try:
        merged, locator, outcome.issues = _merge_and_validate(path, document, templates)
    except RecursionError:  # parsed, but too deep for the recursive merge
        outcome.issues = [SpecIssue(str(path), "$", "the document is nested too deeply")]
    if outcome.issues:
        return outcome
    issues = semantic_issues(merged, str(path), locator.describe)
    try:
        pipeline = resolve_pipeline(merged, path, templates.root)
    except SpecErrors as exc:
        issues += exc.issues
    else:
        outcome.pipeline = None if issues else pipeline
    outcome.issues = _by_path(locator.relocate(issues))
    return outcome


def _merge_and_validate(
    path: Path, document: dict[str, Any], templates: TemplateSet
) -> tuple[dict[str, Any], _Locator, list[SpecIssue]]:
    """The document merged over its templates, a locator for its paths, and the issues so far."""
    merged: dict[str, Any] = {}
    layers, issues = templates.layers(path, document)
    for layer in layers if not issues else ():  # broken templates: the merge would repeat their errors
        merged, found = merge(merged, layer.document or {}, layer.file)
        issues += found
    if issues:
        return merged, _Locator(merged, document, {}), issues
    origins: Origins = {}
    merged, issues = merge(merged, document, str(path), origins)
    locator = _Locator(merged, document, origins)
    if layers:
        issues += _by_path(locator.relocate(schema_issues(merged, str(path))))
    else:  # the file is the whole document: validate it as written, remove entries included
        issues += schema_issues(document, str(path))
    return merged, locator, issues


def _by_path(issues: list[SpecIssue]) -> list[SpecIssue]:
    return sorted(issues, key=lambda issue: path_sort_key(issue.path))


class _Locator:
    """Maps paths in a merged document back to the spec file's own paths."""

    def __init__(self, merged: dict[str, Any], document: dict[str, Any], origins: Origins) -> None:
        self.merged, self.document, self.origins = merged, document, origins

    def path(self, path: str) -> str | None:
        """`path` as written in the spec file, or None when only its templates set it."""
        parts = layer_path(self.merged, self.document, path_parts(path), self.origins)
        return None if parts is None else json_path(parts)

    def describe(self, path: str) -> str:
        """Where `path` is, for a message: ``at $.stages[0]`` or ``in a template``."""
        own = self.path(path)
        return "in a template" if own is None else f"at {own}"

    def relocate(self, issues: list[SpecIssue]) -> list[SpecIssue]:
        """Issues at the spec file's paths; those set only by templates keep the merged path and say so."""
        relocated = []
        for issue in issues:
            own = self.path(issue.path)
            if own is None:
                relocated.append(
                    replace(issue, message=f"{issue.message} (in the document merged with its templates)")
                )
            else:
                relocated.append(replace(issue, path=own))
        return relocated


def _combine(outcomes: Iterable[_Outcome]) -> LoadResult:
    """Pipelines and issues of many files; files sharing a pipeline id all fail."""
    outcomes = list(outcomes)
    by_id: dict[str, list[_Outcome]] = {}
    for outcome in outcomes:
        if outcome.pipeline_id is not None:
            by_id.setdefault(outcome.pipeline_id, []).append(outcome)
    result = LoadResult()
    for outcome in outcomes:
        twins = [str(other.file) for other in by_id.get(outcome.pipeline_id, ()) if other is not outcome]
        if twins:
            message = f"pipeline id {outcome.pipeline_id!r} is also defined in {', '.join(twins)}"
            outcome.issues.append(SpecIssue(str(outcome.file), "$.pipeline", message))
        elif outcome.pipeline is not None:
            result.pipelines[outcome.pipeline.id] = outcome.pipeline
        result.errors += outcome.issues
    result.errors = list(dict.fromkeys(result.errors))
    return result


@dataclass(frozen=True)
class RollbackEssentials:
    """What a rollback needs of a pipeline whose spec is broken: where its ledger is and how to reach it."""

    pipeline: str
    spec_file: str
    artifact_store: str | None
    aws_conn_id: str
    repo: str


def rollback_essentials(path: Path, specs_root: Path | str) -> RollbackEssentials | None:
    """The pipeline id, store, connection and repository of a spec that does not load, taken from the file
    merged over whatever of its templates still loads (None when even the id is not there).

    A broken spec must not take away the ability to roll back: the ledger records everything else.
    """
    try:
        document = read_spec(path)
    except SpecErrors:
        return None
    merged: dict[str, Any] = {}
    layers, _ = TemplateSet(specs_root).layers(path, document)
    for layer in [*layers, None]:
        try:
            merged, _ = merge(merged, document if layer is None else layer.document or {}, str(path))
        except (RecursionError, TypeError, AttributeError):
            continue
    pipeline, store = merged.get("pipeline"), (merged.get("artifacts") or {}).get("store")
    conn, repo = merged.get("aws_conn_id", DEFAULT_AWS_CONN_ID), (merged.get("source") or {}).get("repo", "")
    if not isinstance(pipeline, str) or not pipeline or not all(isinstance(v, str) for v in (conn, repo)):
        return None
    store = store if isinstance(store, str) else None
    return RollbackEssentials(
        pipeline, str(path), store, conn, resolve_repo(repo, specs_root) if repo else ""
    )
