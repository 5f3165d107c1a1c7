"""The `command` deployer: the spec's own deploy and rollback shell commands."""

from __future__ import annotations

from typing import Any

from handsoff.deployers.base import DeployContext, Deployer
from handsoff.hooks.shell import handsoff_env, run_command, target_env
from handsoff.model.durations import parse_duration


class CommandDeployer(Deployer):
    """Runs `deploy` / `rollback` in a clean checkout of the commit, values passed as env vars."""

    type = "command"
    needs_checkout = True
    rollback_unrecorded = True

    def _run(self, key: str, ctx: DeployContext) -> dict[str, Any]:
        if ctx.workdir is None:
            raise ValueError("the command deployer needs a checkout (ctx.workdir)")
        timeout = parse_duration(self.fields["timeout"]) if self.fields.get("timeout") else None
        env = {**ctx.env, **command_env(ctx)}
        run_command(
            f"{key} of target {ctx.target}", self.fields[key], env=env, cwd=ctx.workdir, timeout=timeout
        )
        return {}

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Run the `deploy` command."""
        return self._run("deploy", ctx)

    def current_version(self, ctx: DeployContext) -> str | None:
        """A command deployer cannot ask the target; the ledger is the source of truth."""
        return None

    def rollback(self, ctx: DeployContext) -> dict[str, Any]:
        """Run the `rollback` command (HANDSOFF_PREVIOUS_* say what to restore; empty: nothing ran)."""
        return self._run("rollback", ctx)


def command_env(ctx: DeployContext) -> dict[str, str]:
    """The HANDSOFF_* variables of a deploy or rollback."""
    env = handsoff_env(
        pipeline=ctx.pipeline,
        commit=ctx.commit,
        stage=ctx.stage,
        wave=ctx.wave,
        run_id=ctx.run_id,
        artifact=str(ctx.artifact) if ctx.artifact else None,
        previous_commit=ctx.previous.commit if ctx.previous else None,
        previous_artifact=str(ctx.previous_artifact) if ctx.previous_artifact else None,
    )
    return {**env, **target_env(ctx.target_fields)}
