"""The `cloudformation` deployer: the commit's template and parameters, applied through a change set.

The ledger records the exact template body and parameters, so rollback re-applies exactly what ran
before. A change set that finds nothing to change is a success (a retry or a redeploy).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
import zipfile
from datetime import timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from handsoff.deployers.base import AwsDeployer, DeployContext, RestoreImpossible

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.cloud_formation import CloudFormationHook

log = logging.getLogger(__name__)

#: what CloudFormation says when a change set would change nothing (a FAILED change set, or an error)
_NO_CHANGES = re.compile(r"didn't contain changes|No updates are to be performed", re.IGNORECASE)


class CloudFormationDeployer(AwsDeployer):
    """Creates or updates `stack` from `template` (in the artifact zip, else in the checkout)."""

    type = "cloudformation"
    needs_checkout = True
    hook_class = "airflow.providers.amazon.aws.hooks.cloud_formation.CloudFormationHook"
    location_fields = ("stack", "region")
    #: bound on each wait: the change set being created, the stack being created/updated/deleted
    wait_timeout: ClassVar[timedelta] = timedelta(hours=1)
    poll_seconds: ClassVar[int] = 10

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Apply the commit's template and parameters to the stack (created when it does not exist)."""
        stack = self.field("stack", ctx)
        body = self._template(ctx)
        parameters = {k: str(v) for k, v in (self.field("parameters", ctx) or {}).items()}
        hook = self.hook(ctx)
        change_set = self._apply(hook, stack, body, parameters, ctx)
        region = hook.conn_region_name
        return {
            "stack": stack,
            "region": region,
            "template_body": body,
            "parameters": parameters,
            "change_set": change_set,
        }

    def observe(self, ctx: DeployContext) -> dict[str, Any] | None:
        """The stack's template body and parameters as they are; `absent` when there is no stack.

        None (unknown) when a parameter is NoEcho: CloudFormation shows it as ****, so it could not be
        put back exactly.
        """
        hook, stack = self.hook(ctx), self.field("stack", ctx)
        where = {"stack": stack, "region": hook.conn_region_name}
        if _status(hook, stack) in (None, "REVIEW_IN_PROGRESS"):
            return {**where, "absent": True}
        body = hook.conn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
        described = hook.conn.describe_stacks(StackName=stack)["Stacks"][0]
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
        if any(value == "****" for value in parameters.values()):
            log.warning("CloudFormation stack %s has NoEcho parameters: what runs cannot be recorded", stack)
            return None
        text = body if isinstance(body, str) else json.dumps(body)  # boto3 parses JSON templates
        return {**where, "template_body": text, "parameters": parameters}

    def current_version(self, ctx: DeployContext) -> str | None:
        """A fingerprint (sha256 prefix) of the stack's template; None when there is no stack."""
        hook, stack = self.hook(ctx), self.field("stack", ctx)
        if _status(hook, stack) is None:
            return None
        return _fingerprint(hook.conn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"])

    def rollback(self, ctx: DeployContext) -> dict[str, Any]:
        """Re-apply ctx.previous's template and parameters; `absent` (the stack did not exist before
        handsoff created it): delete the stack. Never deletes a stack it did not create.

        RestoreImpossible, with the stack untouched, when no template is recorded or the stack is gone.
        """
        hook, stack = self.hook(ctx), self.field("stack", ctx)
        detail = ctx.previous.detail if ctx.previous is not None else {}
        if detail.get("absent"):
            self._delete(hook, stack)
            return {"stack": stack, "deleted": True}
        if "template_body" not in detail:
            raise RestoreImpossible(f"no template of stack {stack!r} is recorded to restore; nothing changed")
        if _status(hook, stack) is None:
            raise RestoreImpossible(
                f"CloudFormation stack {stack!r} not found in region {hook.conn_region_name}"
            )
        parameters = detail.get("parameters", {})
        change_set = self._apply(hook, stack, detail["template_body"], parameters, ctx)
        return {**detail, "change_set": change_set}

    def _template(self, ctx: DeployContext) -> str:
        """The template body: the artifact zip's member `template`, else the checkout's file."""
        path = PurePosixPath(self.field("template", ctx))
        if ctx.artifact is not None and zipfile.is_zipfile(ctx.artifact):
            with zipfile.ZipFile(ctx.artifact) as archive:
                if str(path) in archive.namelist():
                    return archive.read(str(path)).decode()
        if ctx.workdir is not None:
            file = (ctx.workdir / path).resolve()
            if file.is_relative_to(ctx.workdir.resolve()) and file.is_file():
                return file.read_text()
        raise ValueError(
            f"template {str(path)!r} of stack {self.field('stack', ctx)!r} is neither in the artifact "
            f"({ctx.artifact}) nor in the checkout ({ctx.workdir})"
        )

    def _apply(
        self, hook: CloudFormationHook, stack: str, body: str, parameters: dict[str, str], ctx: DeployContext
    ) -> str | None:
        """Create, wait for and execute a change set; its ARN, or None when there was nothing to change."""
        kind = "CREATE" if _status(hook, stack) in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
        request = {
            "StackName": stack,
            "ChangeSetName": _change_set_name(ctx),
            "ChangeSetType": kind,
            "TemplateBody": body,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            "Capabilities": self.field("capabilities", ctx, []),  # e.g. CAPABILITY_IAM, when the spec allows
        }
        try:
            change_set = hook.conn.create_change_set(**request)["Id"]
        except hook.conn.exceptions.ClientError as err:
            if _NO_CHANGES.search(str(err)):
                log.info("CloudFormation stack %s: no changes", stack)
                return None
            raise
        if not self._ready(hook, stack, change_set):
            return None
        hook.conn.execute_change_set(ChangeSetName=change_set)
        self._wait(hook, f"stack_{kind.lower()}_complete", stack, StackName=stack)
        log.info("CloudFormation stack %s: %s complete (%s)", stack, kind.lower(), change_set)
        return change_set

    def _ready(self, hook: CloudFormationHook, stack: str, change_set: str) -> bool:
        """Wait until the change set is created: True to execute, False when it changes nothing."""
        try:
            self._wait(hook, "change_set_create_complete", stack, ChangeSetName=change_set)
            return True
        except RuntimeError as err:
            reason = hook.conn.describe_change_set(ChangeSetName=change_set).get("StatusReason", "")
            if not _NO_CHANGES.search(reason):
                raise RuntimeError(f"change set {change_set} of stack {stack!r} failed: {reason}") from err
        hook.conn.delete_change_set(ChangeSetName=change_set)
        log.info("CloudFormation stack %s: no changes", stack)
        return False

    def _delete(self, hook: CloudFormationHook, stack: str) -> None:
        if _status(hook, stack) is None:
            return
        hook.conn.delete_stack(StackName=stack)
        self._wait(hook, "stack_delete_complete", stack, StackName=stack)
        log.info("CloudFormation stack %s deleted", stack)

    def _wait(self, hook: CloudFormationHook, waiter: str, stack: str, **kwargs: Any) -> None:
        def failed(err: Exception) -> Exception:
            return RuntimeError(
                f"CloudFormation stack {stack!r} ({_status(hook, stack)}): {waiter} failed: {err}"
            )

        self.wait(hook, waiter, failed, **kwargs)


def _status(hook: CloudFormationHook, stack: str) -> str | None:
    """The stack's status, None when it does not exist."""
    try:
        return hook.conn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except hook.conn.exceptions.ClientError as err:
        if "does not exist" in str(err):
            return None
        raise


def _change_set_name(ctx: DeployContext) -> str:
    """A unique change set name that says which commit made it ([a-zA-Z][-a-zA-Z0-9]*, ≤128)."""
    commit = re.sub(r"[^a-zA-Z0-9]", "", ctx.commit)[:12]
    return f"handsoff-{commit}-{uuid.uuid4().hex[:12]}"


def _fingerprint(template: str | dict[str, Any]) -> str:
    """sha256 prefix of a template; boto3 returns JSON templates parsed, so JSON is hashed canonically."""
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError:
            return hashlib.sha256(template.encode()).hexdigest()[:16]
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]
