"""The `ecs` deployer: a new task definition revision with one container's image replaced, then the service.

Everything else in the task definition is copied from the revision the service runs now, so a deploy
changes exactly one image. The ledger records the task definition ARN; rollback restores exactly that.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from handsoff.deployers.base import AwsDeployer, DeployContext, RestoreImpossible

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.ecs import EcsHook

log = logging.getLogger(__name__)


class EcsDeployer(AwsDeployer):
    """Registers a revision with `container` running `image` and rolls the service onto it."""

    type = "ecs"
    hook_class = "airflow.providers.amazon.aws.hooks.ecs.EcsHook"
    location_fields = ("cluster", "service", "region")
    #: bound on waiting for the service to be stable (boto's `services_stable` waiter)
    wait_timeout: ClassVar[timedelta] = timedelta(minutes=30)
    poll_seconds: ClassVar[int] = 15

    def _names(self, ctx: DeployContext) -> tuple[str, str]:
        return self.field("cluster", ctx), self.field("service", ctx)

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Register the new revision, update the service to it and wait until it is stable."""
        hook = self.hook(ctx)
        cluster, service = self._names(ctx)
        old = self._service(hook, cluster, service)["taskDefinition"]
        new = self._register(hook, old, self.field("container", ctx), self.field("image", ctx))
        self._switch(hook, cluster, service, new)
        return {
            "cluster": cluster,
            "service": service,
            "region": hook.conn_region_name,
            "task_definition": new,
            "previous_task_definition": old,
        }

    def observe(self, ctx: DeployContext) -> dict[str, Any]:
        """The task definition the service runs (an ECS service always runs one)."""
        hook = self.hook(ctx)
        cluster, service = self._names(ctx)
        running = self._service(hook, cluster, service)["taskDefinition"]
        return {
            "cluster": cluster,
            "service": service,
            "region": hook.conn_region_name,
            "task_definition": running,
        }

    def current_version(self, ctx: DeployContext) -> str | None:
        """The task definition ARN the service runs."""
        return self._service(self.hook(ctx), *self._names(ctx))["taskDefinition"]

    def rollback(self, ctx: DeployContext) -> dict[str, Any]:
        """Update the service back to ctx.previous's task definition and wait until it is stable.

        RestoreImpossible, with the service untouched, when nothing is recorded, the service is gone or
        the task definition is no longer ACTIVE (ECS refuses to run an INACTIVE one).
        """
        cluster, service = self._names(ctx)
        previous = ctx.previous.detail.get("task_definition") if ctx.previous is not None else None
        if not previous:
            raise RestoreImpossible(
                f"no task definition recorded to restore ECS service {service!r} in cluster {cluster!r} "
                f"(target {ctx.target})"
            )
        hook = self.hook(ctx)
        try:
            self._service(hook, cluster, service)
        except ValueError as err:
            raise RestoreImpossible(str(err)) from None
        status = hook.conn.describe_task_definition(taskDefinition=previous)["taskDefinition"].get("status")
        if status != "ACTIVE":
            raise RestoreImpossible(f"task definition {previous} is {status}, not ACTIVE: ECS cannot run it")
        self._switch(hook, cluster, service, previous)
        return {"cluster": cluster, "service": service, "task_definition": previous}

    def _service(self, hook: EcsHook, cluster: str, service: str) -> dict[str, Any]:
        where = f"in region {hook.conn_region_name}"
        try:
            found = hook.conn.describe_services(cluster=cluster, services=[service])
        except hook.conn.exceptions.ClusterNotFoundException:
            raise ValueError(f"ECS cluster {cluster!r} not found {where}") from None
        active = [s for s in found["services"] if s["status"] == "ACTIVE"]
        if not active:
            raise ValueError(f"ECS service {service!r} not found in cluster {cluster!r} {where}")
        return active[0]

    def _register(self, hook: EcsHook, current: str, container: str, image: str) -> str:
        described = hook.conn.describe_task_definition(taskDefinition=current, include=["TAGS"])
        accepted = hook.conn.meta.service_model.operation_model("RegisterTaskDefinition").input_shape.members
        request = {k: v for k, v in described["taskDefinition"].items() if k in accepted}
        if described.get("tags"):
            request["tags"] = described["tags"]
        request["containerDefinitions"] = _with_image(
            request["containerDefinitions"], container, image, current
        )
        new = hook.conn.register_task_definition(**request)["taskDefinition"]["taskDefinitionArn"]
        log.info("ECS: registered %s (%s=%s), from %s", new, container, image, current)
        return new

    def _switch(self, hook: EcsHook, cluster: str, service: str, task_definition: str) -> None:
        """Update the service to `task_definition`; wait until stable and check ECS did not roll it back."""
        hook.conn.update_service(cluster=cluster, service=service, taskDefinition=task_definition)

        def failed(err: Exception) -> Exception:
            return RuntimeError(
                f"ECS service {service!r} in cluster {cluster!r} did not become stable on "
                f"{task_definition} within {self.wait_timeout}: {err}"
            )

        self.wait(hook, "services_stable", failed, cluster=cluster, services=[service])
        running = self._service(hook, cluster, service)["taskDefinition"]
        if running != task_definition:
            raise RuntimeError(
                f"ECS service {service!r} in cluster {cluster!r} runs {running}, not {task_definition} "
                "(rolled back by the deployment circuit breaker?)"
            )
        log.info("ECS service %s/%s is stable on %s", cluster, service, task_definition)


def _with_image(
    containers: list[dict[str, Any]], name: str, image: str, task_definition: str
) -> list[dict[str, Any]]:
    """The container definitions with container `name`'s image replaced; ValueError when it is missing."""
    names = [c["name"] for c in containers]
    if name not in names:
        raise ValueError(
            f"container {name!r} is not in task definition {task_definition} (containers: {', '.join(names)})"
        )
    return [{**c, "image": image} if c["name"] == name else c for c in containers]
