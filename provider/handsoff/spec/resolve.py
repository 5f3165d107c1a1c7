"""A validated, merged spec document → ``model.Pipeline``.

Deployer: each target uses the nearest ``deploy`` object (target > wave > stage > pipeline); the
nearest object wins whole, levels are never merged. ``${...}`` placeholders in its string fields
(any depth, except the top-level ``type``) are filled from ``${pipeline}``, ``${stage}``, ``${wave}``,
``${target.name}`` and ``${target.<field>}``. Runtime placeholders (``${commit}``) are left as
written, except for deployer types that cannot fill them, for which they are an error.

Bake: the bake after a wave is the longest, over its targets, of the target's ``bake``, else the
wave's, else the pipeline's; ``Target.bake`` holds that per-target value. The bake after a stage
(after its tests) is the stage's own ``bake`` only; waves do not inherit it. A bake written as an
object carries ``min_datapoints`` evidence, which follows the duration it was written with.

Alarms: each key of ``alarms`` (rollback, blockers, insufficient_data, poll, blocker_timeout) resolves
nearest-wins on its own (target > wave > stage > pipeline). Alarm names take the same placeholders as
deployer fields and are filled per target; an alarm without a ``region`` is read in its target's region.

Windows: each entry of ``windows`` is parsed by ``DeploymentWindow.from_spec``; its errors become issues
at the window's path. A wave's window is its own ``window``, else its stage's (names are checked in
validate.py).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from handsoff.model.durations import parse_duration
from handsoff.model.pipeline import (
    DEFAULT_AWS_CONN_ID,
    AlarmPolicy,
    AlarmRef,
    Approval,
    BakeEvidence,
    Build,
    Coverage,
    DeployerSpec,
    Pipeline,
    Review,
    Source,
    Stage,
    Step,
    Target,
    TestSuite,
    Wave,
)
from handsoff.model.windows import DeploymentWindow
from handsoff.spec.errors import SpecErrors, SpecIssue, child_path

RUNTIME_PLACEHOLDERS = frozenset({"commit"})
# Deployer types that run their fields as written and so cannot take runtime placeholders.
NO_RUNTIME_PLACEHOLDERS = frozenset({"command"})
NO_DEPLOYER = "no deployer: set deploy on the pipeline, stage, wave or target"
STRUCTURAL_TARGET_KEYS = frozenset({"deploy", "bake", "alarms", "remove"})
_PLACEHOLDER = re.compile(r"\$\{([^}]*)(\}?)")
_REMOTE_REPO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[^/@:]+@[^/:]+:")
# the field a DeploymentWindow.from_spec error names first: "deny[1].from: ..." → "deny[1].from"
_WINDOW_FIELD = re.compile(
    r"^((?:timezone|allow|deny|holidays|min_remaining)(?:\[\d+\])?(?:\.[a-z_]+)?): (.+)$", re.S
)


def resolve_pipeline(document: dict[str, Any], spec_file: Path | str, specs_root: Path | str) -> Pipeline:
    """Build the model of a document that passed the schema; raises SpecErrors on deployer problems."""
    resolver = _Resolver(document, str(spec_file))
    stages = tuple(resolver.stage(stage, index) for index, stage in enumerate(document["stages"]))
    if resolver.issues:
        raise SpecErrors(resolver.issues)
    return Pipeline(
        id=document["pipeline"],
        source=_source(document["source"], specs_root),
        build=_build(document["build"]),
        stages=stages,
        spec_file=str(spec_file),
        description=document.get("description", ""),
        owners=tuple(document.get("owners", ())),
        tags=tuple(document.get("tags", ())),
        artifact_store=document.get("artifacts", {}).get("store"),
        aws_conn_id=document.get("aws_conn_id", DEFAULT_AWS_CONN_ID),
        rollback_scope=document.get("rollback", {}).get("scope", "all"),
        rollback_retries=document.get("rollback", {}).get("retries", 3),
        rollback_retry_delay=parse_duration(document.get("rollback", {}).get("retry_delay", "30s")),
        windows=resolver.windows,
        schedule_window=resolver.windows.get(document.get("schedule", {}).get("window", "")),
        execution_mode=document.get("execution", {}).get("mode", "superseded"),
    )


_Deploy = tuple[dict[str, Any], str] | None  # a deploy object and the JSON path where it is written


def _nearest(node: dict[str, Any], path: str, inherited: _Deploy) -> _Deploy:
    """This level's deploy object, else the inherited one: the nearest wins whole."""
    return (node["deploy"], f"{path}.deploy") if "deploy" in node else inherited


def _first(*values: _Bake) -> _Bake:
    return next((value for value in values if value is not None), None)


_Bake = tuple[timedelta, BakeEvidence | None] | None  # a bake's duration and the evidence it needs
_Alarms = dict[str, tuple[Any, str]]  # alarms key → (value, JSON path where it is written)


def _alarm_layer(inherited: _Alarms, node: dict[str, Any], path: str) -> _Alarms:
    """This level's alarms keys over the inherited ones (each key nearest-wins on its own)."""
    own = node.get("alarms")
    if not own:
        return inherited
    return {**inherited, **{key: (value, f"{path}.alarms.{key}") for key, value in own.items()}}


def _policy(alarms: _Alarms) -> AlarmPolicy:
    default = AlarmPolicy()
    poll, timeout = alarms.get("poll"), alarms.get("blocker_timeout")
    return AlarmPolicy(
        insufficient_data=alarms.get("insufficient_data", (default.insufficient_data, ""))[0],
        poll=parse_duration(poll[0]) if poll else default.poll,
        blocker_timeout=parse_duration(timeout[0]) if timeout else default.blocker_timeout,
    )


class _Resolver:
    """Walks stages → waves → targets carrying what they inherit, and collects deployer issues."""

    def __init__(self, document: dict[str, Any], file: str) -> None:
        self.pipeline = document["pipeline"]
        self.file = file
        self.deploy = _nearest(document, "$", None)
        self.bake = _bake(document.get("bake"))
        self.alarms = _alarm_layer({}, document, "$")
        self.issues: dict[SpecIssue, None] = {}
        self.windows = self.parse_windows(document.get("windows", {}))

    def parse_windows(self, specs: dict[str, Any]) -> dict[str, DeploymentWindow]:
        """The windows that parse; each one that does not becomes an issue at its path."""
        windows = {}
        for name, spec in specs.items():
            try:
                windows[name] = DeploymentWindow.from_spec(spec, name)
            except ValueError as error:
                self.issues[_window_issue(self.file, name, str(error))] = None
        return windows

    def stage(self, stage: dict[str, Any], index: int) -> Stage:
        path = f"$.stages[{index}]"
        deploy = _nearest(stage, path, self.deploy)
        alarms = _alarm_layer(self.alarms, stage, path)
        window = self.windows.get(stage.get("window", ""))
        waves = tuple(
            self.wave(wave, f"{path}.waves[{number}]", stage["name"], deploy, alarms, window)
            for number, wave in enumerate(stage["waves"])
        )
        tests = tuple(_test(test) for test in stage.get("tests", ()))
        duration, evidence = _bake(stage.get("bake")) or (None, None)
        return Stage(
            stage["name"], waves, tests, duration, evidence, _policy(alarms), _approval(stage.get("approval"))
        )

    def wave(
        self,
        wave: dict[str, Any],
        path: str,
        stage: str,
        deploy: _Deploy,
        alarms: _Alarms,
        window: DeploymentWindow | None = None,
    ) -> Wave:
        deploy = _nearest(wave, path, deploy)
        alarms = _alarm_layer(alarms, wave, path)
        names = {"pipeline": self.pipeline, "stage": stage, "wave": wave["name"]}
        bake = _first(_bake(wave.get("bake")), self.bake)
        targets, blockers = [], {}
        for index, target in enumerate(wave["targets"]):
            target_path = f"{path}.targets[{index}]"
            resolved = self.target(target, target_path, names, deploy, bake, alarms)
            if resolved is not None:
                targets.append(resolved)
                target_names = self.names(names, target)
                blockers.update(dict.fromkeys(self.alarm_refs(alarms, "blockers", target_names, target)))
        baked = [t for t in targets if t.bake is not None]
        longest = max(baked, key=lambda t: t.bake, default=None)
        return Wave(
            wave["name"],
            tuple(targets),
            longest.bake if longest else None,
            longest.bake_evidence if longest else None,
            tuple(blockers),
            _policy(alarms),
            self.windows.get(wave["window"]) if "window" in wave else window,
            _approval(wave.get("approval")),
        )

    @staticmethod
    def names(names: dict[str, str], target: dict[str, Any]) -> dict[str, str]:
        """Placeholder values for one target."""
        fields = {key: value for key, value in target.items() if key not in STRUCTURAL_TARGET_KEYS}
        return {**names, **{f"target.{key}": value for key, value in fields.items()}}

    def alarm_refs(
        self, alarms: _Alarms, key: str, names: dict[str, str], target: dict[str, Any]
    ) -> list[AlarmRef]:
        """The `key` alarms (rollback or blockers) of one target, placeholders filled."""
        if key not in alarms:
            return []
        refs, path = alarms[key]
        filler = _Filler(names, False, target["name"], "an alarm name", self.file, self.issues)
        resolved = []
        for index, ref in enumerate(refs):
            name, region = (ref, None) if isinstance(ref, str) else (ref["name"], ref.get("region"))
            where = f"{path}[{index}]" if isinstance(ref, str) else f"{path}[{index}].name"
            filled = filler.fill(name, where)
            resolved.append(AlarmRef(filled, region or target.get("region")))
        return resolved

    def target(
        self,
        target: dict[str, Any],
        path: str,
        names: dict[str, str],
        deploy: _Deploy,
        bake: _Bake,
        alarms: _Alarms,
    ) -> Target | None:
        chosen = _nearest(target, path, deploy)
        if chosen is None:
            self.issues[SpecIssue(self.file, path, NO_DEPLOYER)] = None
            return None
        fields = {key: value for key, value in target.items() if key not in STRUCTURAL_TARGET_KEYS}
        names = self.names(names, target)
        deployer = self.deployer(*chosen, names, target["name"])
        alarms = _alarm_layer(alarms, target, path)
        duration, evidence = _first(_bake(target.get("bake")), bake) or (None, None)
        rollback = tuple(self.alarm_refs(alarms, "rollback", names, target))
        return Target(target["name"], deployer, fields, duration, evidence, rollback)

    def deployer(self, deploy: dict[str, Any], path: str, names: dict[str, str], target: str) -> DeployerSpec:
        kind = deploy["type"]
        runtime_ok = kind not in NO_RUNTIME_PLACEHOLDERS
        filler = _Filler(names, runtime_ok, target, f"the {kind} deployer", self.file, self.issues)
        fields = {
            key: filler.fill(value, child_path(path, key)) for key, value in deploy.items() if key != "type"
        }
        return DeployerSpec(kind, fields)


class _Filler:
    """Fills placeholders in one deployer object for one target, recording problems as issues."""

    def __init__(
        self,
        names: dict[str, str],
        runtime_ok: bool,
        target: str,
        kind: str,
        file: str,
        issues: dict[SpecIssue, None],
    ) -> None:
        self.names, self.runtime_ok, self.target = names, runtime_ok, target
        self.kind, self.file, self.issues = kind, file, issues

    def fill(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return (
                _PLACEHOLDER.sub(lambda match: self._replace(match, path), value) if "${" in value else value
            )
        if isinstance(value, dict):
            return {key: self.fill(item, child_path(path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.fill(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return value

    def _replace(self, match: re.Match[str], path: str) -> str:
        name, closed = match.group(1), match.group(2)
        if not closed:
            self._problem(path, f"unclosed placeholder {match.group(0)!r}")
        elif name in self.names:
            return self.names[name]
        elif name in RUNTIME_PLACEHOLDERS:
            if self.runtime_ok:
                return match.group(0)
            self._problem(path, f"${{{name}}} is only known at run time; {self.kind} cannot use it")
        elif name.startswith("target."):
            self._problem(path, f"unknown placeholder ${{{name}}} (for target {self.target!r})")
        else:
            self._problem(path, f"unknown placeholder ${{{name}}}")
        return match.group(0)

    def _problem(self, path: str, message: str) -> None:
        self.issues[SpecIssue(self.file, path, message)] = None


def _window_issue(file: str, name: str, error: str) -> SpecIssue:
    """A window's parse error at the field it names (``$.windows.<name>.deny[1].from``), else the window."""
    path, message = child_path("$.windows", name), error.removeprefix(f"window {name!r}: ")
    match = _WINDOW_FIELD.match(message)
    if match:
        path, message = f"{path}.{match.group(1)}", match.group(2)
    return SpecIssue(file, path, message)


def _approval(approval: dict[str, Any] | None) -> Approval | None:
    """A stage's or wave's `approval` (approvers, instructions, timeout; default 24h), or None."""
    if approval is None:
        return None
    return Approval(
        tuple(approval["approvers"]),
        approval.get("instructions", ""),
        parse_duration(approval.get("timeout", "24h")),
    )


def _duration(text: str | None) -> timedelta | None:
    return None if text is None else parse_duration(text)


def _bake(value: str | dict[str, Any] | None) -> _Bake:
    """A bake as written (a duration, or {duration, min_datapoints, max}) → (duration, evidence)."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_duration(value), None
    wanted = value.get("min_datapoints")
    evidence = None
    if wanted:
        evidence = BakeEvidence(
            namespace=wanted["namespace"],
            metric=wanted["metric"],
            count=wanted["count"],
            max=parse_duration(value["max"]),
            dimensions=wanted.get("dimensions", {}),
            region=wanted.get("region"),
        )
    return parse_duration(value["duration"]), evidence


def _test(test: dict[str, Any]) -> TestSuite:
    return TestSuite(test["name"], test["command"], test.get("shards", 1), _duration(test.get("timeout")))


def _build(build: dict[str, Any]) -> Build:
    steps = tuple(
        Step(step["name"], step["command"], _duration(step.get("timeout"))) for step in build.get("steps", ())
    )
    coverage = build.get("coverage")
    if coverage is not None:
        coverage = Coverage(
            coverage["command"], float(coverage["min_percent"]), coverage.get("report", "coverage.json")
        )
    return Build(build["artifact"], steps, coverage)


def resolve_repo(repo: str, specs_root: Path | str) -> str:
    """A relative repo path resolves against the specs root; URLs and absolute paths stay."""
    if not (_REMOTE_REPO.match(repo) or os.path.isabs(repo)):
        return os.path.normpath(os.path.join(os.path.abspath(specs_root), repo))
    return repo


def _source(source: dict[str, Any], specs_root: Path | str) -> Source:
    repo = resolve_repo(source["repo"], specs_root)
    review = source.get("review", {})
    return Source(
        repo,
        source.get("branch", "main"),
        Review(
            required=review.get("required", False),
            trailers=tuple(review.get("trailers", Review.trailers)),
            min_reviewers=review.get("min_reviewers", 1),
        ),
        commit_url=source.get("commit_url"),
    )
