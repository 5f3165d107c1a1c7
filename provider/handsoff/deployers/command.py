"""The `command` deployer: the spec's own deploy and rollback shell commands, and `current`.

`current` (optional) prints what runs on the target (a version, a commit; empty when nothing does). The
deploy task runs it before the first change, so that a rollback past handsoff's first deploy can restore
what ran before (HANDSOFF_PREVIOUS_CURRENT) and removes a target only when nothing ran there. Without it
handsoff cannot know, and refuses such a rollback rather than remove what it may not have created.
"""

from __future__ import annotations

from typing import Any

from handsoff.deployers.base import DeployContext, Deployer, RestoreImpossible
from handsoff.hooks.shell import handsoff_env, run_command, target_env
from handsoff.model.durations import parse_duration


class CommandDeployer(Deployer):
    """Runs `deploy` / `rollback` in a clean checkout of the commit, values passed as env vars."""

    type = "command"
    needs_checkout = True

    def _run(self, key: str, ctx: DeployContext) -> dict[str, Any]:
        if ctx.workdir is None:
            raise ValueError("the command deployer needs a checkout (ctx.workdir)")
        timeout = parse_duration(self.fields["timeout"]) if self.fields.get("timeout") else None
        env = {**ctx.env, **command_env(ctx)}
        output = run_command(
            f"{key} of target {ctx.target}", self.fields[key], env=env, cwd=ctx.workdir, timeout=timeout
        )
        return {"output": output}

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Run the `deploy` command."""
        self._run("deploy", ctx)
        return {}

    def observe(self, ctx: DeployContext) -> dict[str, Any] | None:
        """What `current` prints (`absent` when it prints nothing); None without a `current` command."""
        if not self.fields.get("current"):
            return None
        printed = self._run("current", ctx)["output"].strip()[:1000]
        return {"current": printed, "absent": True} if not printed else {"current": printed}

    def current_version(self, ctx: DeployContext) -> str | None:
        """A command deployer cannot ask the target; the ledger is the source of truth."""
        return None

    def rollback(self, ctx: DeployContext) -> dict[str, Any]:
        """Run the `rollback` command: HANDSOFF_PREVIOUS_* say what to restore (a commit and its artifact,
        or what `current` printed before handsoff; all empty: nothing ran, remove the deployment).

        RestoreImpossible, before running anything, when the commit to restore has no stored artifact any
        more (an object-store lifecycle rule removed it): the command could not restore it exactly.
        """
        previous = ctx.previous
        if previous is None:
            raise RestoreImpossible(f"nothing is recorded to restore target {ctx.target} to")
        if previous.commit and ctx.previous_artifact is None:
            raise RestoreImpossible(
                f"the artifact of commit {previous.commit[:12]}, which target {ctx.target} should go back "
                "to, "
                f"is no longer in the store ({previous.artifact or 'no artifact recorded'}); nothing changed"
            )
        self._run("rollback", ctx)
        return {}


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
        previous_current=ctx.previous.detail.get("current") if ctx.previous else None,
    )
    return {**env, **target_env(ctx.target_fields)}
