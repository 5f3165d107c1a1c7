"""The deployer interface: see what runs on a target, deploy a commit there, put back what ran before.

`observe` says, before anything changes, what runs on the target as a restorable detail (the alias's
version and routing, the stack's template and parameters, the service's task definition, the output of a
command deployer's `current` command), `{"absent": true}` when nothing does, None when the deployer cannot
tell. The deploy task records it as the deploy's `before`. `deploy` returns a JSON-serialisable `detail`
(e.g. the Lambda version it published) that the ledger records with the commit; `rollback` restores
exactly what `ctx.previous` (a deploy's detail, or a `before`) describes, or raises RestoreImpossible
without changing anything when that is gone (a deleted version, an expired artifact).
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from handsoff.model.pipeline import DEFAULT_AWS_CONN_ID
from handsoff.model.records import LedgerEntry


@dataclass(frozen=True)
class DeployContext:
    """Everything a deployer needs for one target in one run."""

    pipeline: str
    stage: str
    wave: str
    target: str
    target_fields: Mapping[str, str]
    commit: str
    run_id: str
    artifact: Path | None
    previous: LedgerEntry | None = None
    previous_artifact: Path | None = None
    workdir: Path | None = None
    aws_conn_id: str = DEFAULT_AWS_CONN_ID
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def region(self) -> str | None:
        """The target's region (deployers may override it with their own `region` field)."""
        return self.target_fields.get("region")


_RUNTIME_COMMIT = re.compile(r"\$\{commit\}")


class RestoreImpossible(ValueError):
    """What a rollback would restore is gone (or never known): nothing was changed."""


class Deployer(ABC):
    """One deployer type. Subclasses are registered by `type` in handsoff.deployers.registry."""

    type: ClassVar[str]
    #: whether deploy/rollback run in a clean checkout of the commit (ctx.workdir)
    needs_checkout: ClassVar[bool] = False
    #: the fields that say which resource the target is: a restore never goes to another one
    location_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)

    def field(self, name: str, ctx: DeployContext, default: Any = None) -> Any:
        """A field with the runtime placeholder ${commit} filled (recursively in dicts and lists)."""
        return _fill_commit(self.fields.get(name, default), ctx.commit)

    def canary_bake(self) -> timedelta | None:
        """How long to bake between `deploy` (canary share) and `promote`; None: no canary step."""
        return None

    def promote(self, ctx: DeployContext, detail: dict[str, Any]) -> dict[str, Any]:
        """Finish a canary deploy (shift all traffic); returns the detail to record."""
        return detail

    def abort_canary(self, ctx: DeployContext, detail: dict[str, Any]) -> None:  # noqa: B027 (optional)
        """Take a failed canary's traffic back: the target serves exactly what it served before."""

    def observe(self, ctx: DeployContext) -> dict[str, Any] | None:
        """What runs on the target now, restorable by `rollback`; None when the deployer cannot tell."""
        return None

    def location(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The resource a recorded deploy config points at (its `location_fields`)."""
        return {name: config.get(name) for name in self.location_fields}

    @abstractmethod
    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Deploy ctx.commit to the target; return the detail the ledger records (JSON-serialisable)."""

    @abstractmethod
    def current_version(self, ctx: DeployContext) -> str | None:
        """What runs on the target now, as the deployer can tell (None when it cannot)."""

    @abstractmethod
    def rollback(self, ctx: DeployContext) -> dict[str, Any]:
        """Restore exactly what ctx.previous describes (`absent`: remove what handsoff created there);
        RestoreImpossible, with nothing changed, when that cannot be done."""


class AwsDeployer(Deployer):
    """A deployer that reaches AWS through one Amazon provider hook, in the deployer's `region` field,
    else the target's region; its waits are bounded by `wait_timeout`, polled every `poll_seconds`."""

    #: dotted path of the Amazon provider hook class, imported when first used (parsing needs no boto)
    hook_class: ClassVar[str]
    wait_timeout: ClassVar[timedelta]
    poll_seconds: ClassVar[int]

    def hook(self, ctx: DeployContext) -> Any:
        """The hook of the target's connection and region."""
        module, _, name = self.hook_class.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        return cls(aws_conn_id=ctx.aws_conn_id, region_name=self.field("region", ctx) or ctx.region)

    def wait(self, hook: Any, waiter: str, failed: Callable[[Exception], Exception], **kwargs: Any) -> None:
        """Wait with boto's `waiter` up to `wait_timeout`; raise `failed(error)` when it does not succeed."""
        attempts = max(1, int(self.wait_timeout.total_seconds() // self.poll_seconds))
        config = {"Delay": self.poll_seconds, "MaxAttempts": attempts}
        from botocore.exceptions import WaiterError

        try:
            hook.get_waiter(waiter).wait(**kwargs, WaiterConfig=config)
        except WaiterError as err:
            raise failed(err) from err


def _fill_commit(value: Any, commit: str) -> Any:
    if isinstance(value, str):
        return _RUNTIME_COMMIT.sub(commit, value)
    if isinstance(value, dict):
        return {k: _fill_commit(v, commit) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_commit(v, commit) for v in value]
    return value
