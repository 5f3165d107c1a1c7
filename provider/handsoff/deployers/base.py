"""The deployer interface: deploy a commit to a target, say what runs there, roll it back.

`deploy` returns a JSON-serialisable `detail` (e.g. the Lambda version it published) that the ledger
records with the commit; `rollback` reads the detail of `ctx.previous` to restore exactly that. A
detail may carry `before`: the detail of what ran before the deploy (e.g. the alias's old version), which
a rollback restores when the ledger has nothing older (the first deploy of a target by handsoff).
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


class Deployer(ABC):
    """One deployer type. Subclasses are registered by `type` in handsoff.deployers.registry."""

    type: ClassVar[str]
    #: whether deploy/rollback run in a clean checkout of the commit (ctx.workdir)
    needs_checkout: ClassVar[bool] = False
    #: whether `rollback` with nothing recorded before may run after a deploy that failed before the
    #: ledger recorded anything (the command deployer's rollback then removes a half deployment; a cloud
    #: deployer would remove what ran there before handsoff, so it leaves the target as it is)
    rollback_unrecorded: ClassVar[bool] = False

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

    @abstractmethod
    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Deploy ctx.commit to the target; return the detail the ledger records (JSON-serialisable)."""

    @abstractmethod
    def current_version(self, ctx: DeployContext) -> str | None:
        """What runs on the target now, as the deployer can tell (None when it cannot)."""

    @abstractmethod
    def rollback(self, ctx: DeployContext) -> dict[str, Any]:
        """Restore what ctx.previous (and its detail) says ran before; remove the deployment when None."""


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
