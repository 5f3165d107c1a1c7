"""Typed model of a resolved pipeline: what the factory consumes.

The spec layer turns JSON into these frozen dataclasses; nothing here knows about Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from handsoff.model.windows import DeploymentWindow

DEFAULT_AWS_CONN_ID = "aws_default"
#: `execution.mode`: "superseded" (only the newest waiting run goes on) or "queued" (every run, in order).
EXECUTION_MODES = ("superseded", "queued")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Step:
    """A named shell command (a build step)."""

    name: str
    command: str
    timeout: timedelta | None = None


@dataclass(frozen=True)
class TestSuite:
    """A stage's test suite, split into `shards` parallel tasks."""

    __test__ = False  # not a pytest test class

    name: str
    command: str
    shards: int = 1
    timeout: timedelta | None = None


@dataclass(frozen=True)
class Coverage:
    """Coverage gate: run `command`, then read coverage.py's JSON `report`."""

    command: str
    min_percent: float
    report: str = "coverage.json"


@dataclass(frozen=True)
class Build:
    """Build phase: steps in order, optional coverage gate, the artifact to store once."""

    artifact: str
    steps: tuple[Step, ...] = ()
    coverage: Coverage | None = None


@dataclass(frozen=True)
class DeployerSpec:
    """A deployer type and its fields, placeholders already filled (except runtime ones)."""

    type: str
    fields: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict form (``type`` plus fields), as written in the spec."""
        return {"type": self.type, **self.fields}


@dataclass(frozen=True)
class BakeEvidence:
    """`min_datapoints`: a bake counts only once the metric's Sum since the deploy reaches `count`."""

    namespace: str
    metric: str
    count: int
    max: timedelta
    dimensions: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    region: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", _frozen(self.dimensions))


@dataclass(frozen=True)
class AlarmRef:
    """A CloudWatch alarm by name, in `region` (None: the region of the target, else the connection's)."""

    name: str
    region: str | None = None


@dataclass(frozen=True)
class AlarmPolicy:
    """How alarms are read: INSUFFICIENT_DATA as `alarm` or `ok`, the poll, the blocker timeout."""

    insufficient_data: str = "alarm"
    poll: timedelta = timedelta(seconds=30)
    blocker_timeout: timedelta = timedelta(hours=2)


@dataclass(frozen=True)
class Target:
    """One deployment target; `fields` holds every spec field of the target (name, region, ...)."""

    name: str
    deployer: DeployerSpec
    fields: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    bake: timedelta | None = None
    bake_evidence: BakeEvidence | None = None
    rollback_alarms: tuple[AlarmRef, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))

    @property
    def region(self) -> str | None:
        """The target's AWS region, if it names one."""
        return self.fields.get("region")


@dataclass(frozen=True)
class Approval:
    """`approval`: one of `approvers` (Airflow user ids) must approve within `timeout`, else no deploy."""

    approvers: tuple[str, ...]
    instructions: str = ""
    timeout: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Wave:
    """Targets deployed in parallel; `bake` (resolved, longest of its targets) follows the wave."""

    name: str
    targets: tuple[Target, ...]
    bake: timedelta | None = None
    bake_evidence: BakeEvidence | None = None
    blockers: tuple[AlarmRef, ...] = ()
    alarm_policy: AlarmPolicy = AlarmPolicy()
    #: the deployment window gating the wave's start: its own `window`, else its stage's
    window: DeploymentWindow | None = None
    #: human approval before the wave deploys (its own `approval` only; a stage's gates the stage)
    approval: Approval | None = None


@dataclass(frozen=True)
class Stage:
    """Waves in order, then tests (sharded), then the stage's own bake."""

    name: str
    waves: tuple[Wave, ...]
    tests: tuple[TestSuite, ...] = ()
    bake: timedelta | None = None
    bake_evidence: BakeEvidence | None = None
    alarm_policy: AlarmPolicy = AlarmPolicy()
    #: human approval before the stage's first wave
    approval: Approval | None = None


@dataclass(frozen=True)
class Review:
    """`source.review`: commits reaching production need `min_reviewers` review trailers by others."""

    required: bool = False
    trailers: tuple[str, ...] = ("Reviewed-by", "Approved-by")
    min_reviewers: int = 1


@dataclass(frozen=True)
class Source:
    """Where the code comes from; `repo` is absolute (or a URL) after resolution."""

    repo: str
    branch: str = "main"
    review: Review = Review()
    #: `source.commit_url`: the commit's web page, `${commit}` filled at run time (None: no Commit link)
    commit_url: str | None = None


@dataclass(frozen=True)
class Pipeline:
    """A fully resolved pipeline spec."""

    id: str
    source: Source
    build: Build
    stages: tuple[Stage, ...]
    spec_file: str = ""
    description: str = ""
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    artifact_store: str | None = None
    aws_conn_id: str = DEFAULT_AWS_CONN_ID
    rollback_scope: str = "all"
    rollback_retries: int = 3
    rollback_retry_delay: timedelta = timedelta(seconds=30)
    #: every window of the spec, by name
    windows: Mapping[str, DeploymentWindow] = field(default_factory=lambda: _frozen({}))
    #: `schedule.window`: a run starts at each of its openings (None: runs are triggered only)
    schedule_window: DeploymentWindow | None = None
    execution_mode: str = "superseded"

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", _frozen(self.windows))

    def targets(self) -> tuple[Target, ...]:
        """Every target, in deployment order."""
        return tuple(t for s in self.stages for w in s.waves for t in w.targets)


def alarm_map(refs: Iterable[AlarmRef]) -> dict[str, list[str]]:
    """Alarm names by region ("" = the connection's region), each once, in order: what the tasks watch."""
    grouped: dict[str, dict[str, None]] = {}
    for ref in refs:
        grouped.setdefault(ref.region or "", {})[ref.name] = None
    return {region: list(names) for region, names in grouped.items()}
