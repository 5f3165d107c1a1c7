"""The `lambda` deployer: new code → a published version → the alias, optionally through a canary share.

The alias is what callers invoke, so "what runs" is the alias's version and its routing weights. A canary
first sends `canary.percent` of the alias's traffic to the new version (RoutingConfig) and `promote`
shifts the rest; a failed canary puts the alias back exactly as it was (`abort_canary`).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from handsoff.deployers.base import AwsDeployer, DeployContext, RestoreImpossible
from handsoff.model.durations import parse_duration

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.lambda_function import LambdaHook

log = logging.getLogger(__name__)


class LambdaDeployer(AwsDeployer):
    """Updates a function's code from the artifact zip, publishes a version and points an alias at it."""

    type = "lambda"
    hook_class = "airflow.providers.amazon.aws.hooks.lambda_function.LambdaHook"
    location_fields = ("function", "alias", "region")
    #: bound on waiting for a code update (LastUpdateStatus) and for the published version to be active
    wait_timeout: ClassVar[timedelta] = timedelta(minutes=5)
    poll_seconds: ClassVar[int] = 5

    def _names(self, ctx: DeployContext) -> tuple[str, str]:
        return self.field("function", ctx), self.field("alias", ctx, "live")

    def _detail(self, hook: LambdaHook, ctx: DeployContext, version: str | None) -> dict[str, Any]:
        function, alias = self._names(ctx)
        return {"function": function, "alias": alias, "version": version, "region": hook.conn_region_name}

    def canary_bake(self) -> timedelta | None:
        """The canary's bake (`canary.bake`), None without a canary."""
        canary = self.fields.get("canary")
        return parse_duration(canary["bake"]) if canary else None

    def observe(self, ctx: DeployContext) -> dict[str, Any]:
        """The alias's version and routing weights; `absent` when the function has no such alias."""
        hook = self.hook(ctx)
        function, alias = self._names(ctx)
        found = self._alias(hook, function, alias)
        if found is None:
            return {**self._detail(hook, ctx, None), "absent": True}
        routing = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return {**self._detail(hook, ctx, found["FunctionVersion"]), "routing": dict(routing)}

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Publish the artifact as a new version; point the alias at it, or give it the canary share."""
        hook = self.hook(ctx)
        function, alias = self._names(ctx)
        current = self._alias_version(hook, function, alias)
        version = self._publish(hook, function, ctx)
        detail = self._detail(hook, ctx, version)
        canary = self.fields.get("canary")
        if canary is None:
            self._point(hook, function, alias, version)
            return detail
        if current is None or current == version:
            log.info("Lambda %s:%s: nothing to split traffic with; canary skipped", function, alias)
            self._point(hook, function, alias, version)
            return {**detail, "canary": "skipped"}
        self._point(hook, function, alias, current, {version: canary["percent"] / 100})
        return {**detail, "canary_version": version, "previous_version": current}

    def promote(self, ctx: DeployContext, detail: dict[str, Any]) -> dict[str, Any]:
        """Send all of the alias's traffic to the new version and clear the routing config."""
        hook = self.hook(ctx)
        function, alias = self._names(ctx)
        self._point(hook, function, alias, detail["version"])
        carried = {k: detail[k] for k in ("previous_version", "before") if k in detail}
        return {**self._detail(hook, ctx, detail["version"]), **carried}

    def abort_canary(self, ctx: DeployContext, detail: dict[str, Any]) -> None:
        """Give the alias back to the version it served before the canary, with its routing as it was."""
        hook = self.hook(ctx)
        function, alias = self._names(ctx)
        before = detail.get("before") or {}
        routing = before.get("routing") if before.get("version") == detail["previous_version"] else None
        self._point(hook, function, alias, detail["previous_version"], routing)

    def current_version(self, ctx: DeployContext) -> str | None:
        """The version the alias points at (None when there is no alias)."""
        return self._alias_version(self.hook(ctx), *self._names(ctx))

    def rollback(self, ctx: DeployContext) -> dict[str, Any]:
        """Point the alias at ctx.previous's version with its routing (none recorded: cleared); `absent`
        (the alias did not exist before handsoff made it): delete the alias. Idempotent.

        RestoreImpossible when the version to restore was deleted: the alias is left as it is.
        """
        hook = self.hook(ctx)
        function, alias = self._names(ctx)
        previous = ctx.previous.detail if ctx.previous is not None else {}
        if previous.get("absent"):
            self._delete_alias(hook, function, alias)
            return self._detail(hook, ctx, None)
        version = previous.get("version")
        if not version:
            raise RestoreImpossible(
                f"the ledger entry to restore ({_what(ctx)}) has no Lambda version; "
                f"cannot restore alias {alias!r} of function {function!r}"
            )
        self._require_version(hook, function, version)
        self._point(hook, function, alias, version, previous.get("routing"))
        return self._detail(hook, ctx, version)

    def _require_version(self, hook: LambdaHook, function: str, version: str) -> None:
        try:
            hook.conn.get_function_configuration(FunctionName=function, Qualifier=version)
        except hook.conn.exceptions.ResourceNotFoundException:
            raise RestoreImpossible(
                f"version {version} of Lambda function {function!r} no longer exists in region "
                f"{hook.conn_region_name}; nothing changed"
            ) from None

    def _publish(self, hook: LambdaHook, function: str, ctx: DeployContext) -> str:
        if ctx.artifact is None:
            raise ValueError(f"the lambda deployer of target {ctx.target} needs the artifact (a zip file)")
        self._wait(hook, "function_updated_v2", function, FunctionName=function)  # no update in flight
        update = hook.conn.update_function_code(FunctionName=function, ZipFile=ctx.artifact.read_bytes())
        self._wait(hook, "function_updated_v2", function, FunctionName=function)
        published = hook.conn.publish_version(FunctionName=function, CodeSha256=update["CodeSha256"])
        version = published["Version"]
        self._wait(hook, "published_version_active", function, FunctionName=function, Qualifier=version)
        log.info("Lambda %s: published version %s (code %s)", function, version, update["CodeSha256"])
        return version

    def _wait(self, hook: LambdaHook, waiter: str, function: str, **kwargs: Any) -> None:
        def failed(err: Exception) -> Exception:
            if _not_found(getattr(err, "last_response", None)):
                return _missing(hook, function)
            return RuntimeError(f"Lambda function {function!r}: {waiter} did not succeed: {err}")

        self.wait(hook, waiter, failed, **kwargs)

    def _alias_version(self, hook: LambdaHook, function: str, alias: str) -> str | None:
        found = self._alias(hook, function, alias)
        return found["FunctionVersion"] if found else None

    def _alias(self, hook: LambdaHook, function: str, alias: str) -> dict[str, Any] | None:
        """The alias as Lambda describes it (None: the function has no such alias)."""
        try:
            return hook.conn.get_alias(FunctionName=function, Name=alias)
        except hook.conn.exceptions.ResourceNotFoundException:
            pass
        try:  # the alias is missing: is the function there at all?
            hook.conn.get_function_configuration(FunctionName=function)
        except hook.conn.exceptions.ResourceNotFoundException:
            raise _missing(hook, function) from None
        return None

    def _point(
        self,
        hook: LambdaHook,
        function: str,
        alias: str,
        version: str,
        weights: dict[str, float] | None = None,
    ) -> None:
        """Create or update the alias: `version` plus the extra `weights` (none: routing cleared)."""
        routing = {"AdditionalVersionWeights": weights or {}}
        exists = self._alias_version(hook, function, alias) is not None
        call = hook.conn.update_alias if exists else hook.conn.create_alias
        call(FunctionName=function, Name=alias, FunctionVersion=version, RoutingConfig=routing)
        log.info("Lambda %s:%s → version %s %s", function, alias, version, weights or "")

    def _delete_alias(self, hook: LambdaHook, function: str, alias: str) -> None:
        if self._alias_version(hook, function, alias) is None:
            return
        with contextlib.suppress(hook.conn.exceptions.ResourceNotFoundException):
            hook.conn.delete_alias(FunctionName=function, Name=alias)
        log.info("Lambda %s: alias %s deleted", function, alias)


def _what(ctx: DeployContext) -> str:
    previous = ctx.previous
    if previous is None:
        return "none"
    return f"commit {previous.commit[:12]}" if previous.commit else previous.note or "before handsoff"


def _not_found(response: dict[str, Any] | None) -> bool:
    return (response or {}).get("Error", {}).get("Code") == "ResourceNotFoundException"


def _missing(hook: LambdaHook, function: str) -> ValueError:
    return ValueError(f"Lambda function {function!r} not found in region {hook.conn_region_name}")
