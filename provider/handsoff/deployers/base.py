"""The deployer interface: deploy a commit to a target, say what runs there, roll it back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from handsoff.ledger import LedgerEntry


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
    aws_conn_id: str = "aws_default"
    env: Mapping[str, str] = field(default_factory=dict)


class Deployer(ABC):
    """One deployer type. Subclasses are registered by `type` in handsoff.deployers.registry."""

    type: ClassVar[str]
    #: whether deploy/rollback run in a clean checkout of the commit (ctx.workdir)
    needs_checkout: ClassVar[bool] = False

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)

    @abstractmethod
    def deploy(self, ctx: DeployContext) -> str:
        """Deploy ctx.commit to the target; return a short description of what now runs."""

    @abstractmethod
    def current_version(self, ctx: DeployContext) -> str | None:
        """What runs on the target now, as the deployer can tell (None when it cannot)."""

    @abstractmethod
    def rollback(self, ctx: DeployContext) -> str:
        """Put back what ctx.previous says ran before (or remove the deployment when nothing did)."""
