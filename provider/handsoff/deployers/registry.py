"""Deployer types by name: the one place that maps a spec's `deploy.type` to a class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handsoff.deployers.aws_lambda import LambdaDeployer
from handsoff.deployers.base import Deployer
from handsoff.deployers.cloudformation import CloudFormationDeployer
from handsoff.deployers.command import CommandDeployer
from handsoff.deployers.ecs import EcsDeployer

DEPLOYERS: dict[str, type[Deployer]] = {
    cls.type: cls for cls in (CommandDeployer, LambdaDeployer, EcsDeployer, CloudFormationDeployer)
}


def get_deployer(spec: Mapping[str, Any]) -> Deployer:
    """The deployer for a resolved `deploy` object (`type` plus its fields)."""
    fields = dict(spec)
    kind = fields.pop("type")
    try:
        return DEPLOYERS[kind](fields)
    except KeyError:
        raise ValueError(f"unknown deployer type {kind!r}; known: {', '.join(sorted(DEPLOYERS))}") from None
