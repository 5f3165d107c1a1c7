"""The deploy task: one target, one commit, recorded in the ledger.

A deployer with a canary (Lambda `canary`) first shifts part of the traffic, then the task defers
while the target's rollback alarms are watched for the canary bake, and promotes when they stay OK.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from handsoff.deployers.base import DeployContext, Deployer
from handsoff.deployers.registry import get_deployer
from handsoff.hooks.shell import CommandFailed
from handsoff.links.aws import DeployedResourceLink
from handsoff.model.records import LedgerEntry, now_iso
from handsoff.operators.base import HandsoffOperator
from handsoff.store.ledger import DeployInterrupted
from handsoff.triggers.alarms import AlarmWatchTrigger
from handsoff.utils.deferral import deferral_timeout

if TYPE_CHECKING:
    from airflow.sdk import Context


class DeployTargetOperator(HandsoffOperator):
    """Deploy the run's stored artifact to one target through its deployer; record it in the ledger."""

    template_fields = ("alarms", "commit", "deploy", "target")
    operator_extra_links = (DeployedResourceLink(),)
    ui_color = "#dff0d8"

    def __init__(
        self,
        *,
        stage: str,
        wave: str,
        target: dict[str, str],
        deploy: dict[str, Any],
        alarms: dict[str, list[str]] | None = None,
        poll_seconds: float = 30.0,
        insufficient_data: str = "alarm",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.wave = wave
        self.target = target
        self.deploy = deploy
        self.alarms = alarms or {}
        self.poll_seconds = poll_seconds
        self.insufficient_data = insufficient_data

    def execute(self, context: Context) -> dict[str, Any]:
        name = self.target["name"]
        run_id = context["run_id"]
        try:
            record = self.ledger.begin_deploy(name, run_id, self.commit)
        except DeployInterrupted as err:
            # A killed worker or scheduler left this deploy half done: never deploy blindly twice.
            raise AirflowFailException(str(err)) from None
        if record is None:
            self.log.info("Target %s already runs %s from this run; nothing to do", name, self.commit[:12])
            previous = self.ledger.read(name).previous
            return {"target": name, "commit": self.commit, "previous": _commit(previous)}
        current = record.current
        deployer = get_deployer(self.deploy)
        with self.workspace() as tmp:
            self.log.info(
                "Deploying %s to %s (previously %s)", self.commit[:12], name, _commit(current) or "nothing"
            )
            try:
                (tmp / "artifact").mkdir()
                artifact = self.artifacts.fetch(self.commit, tmp / "artifact")
                ctx = self._context(deployer, run_id, current, tmp, artifact)
                detail = _deployed(lambda: deployer.deploy(ctx), name)
            except Exception:
                self.ledger.end_deploy(name)  # failed cleanly in this process: no unknown state
                raise
        canary = deployer.canary_bake()
        if canary and detail.get("canary_version"):  # the deployer split traffic: bake it, then promote
            context["ti"].xcom_push(key="canary", value=detail)  # survives the deferral
            self._defer_for_canary(canary)
        return self._record(context, name, current, detail)

    def _defer_for_canary(self, canary: timedelta) -> None:
        until = datetime.now(UTC) + canary
        self.log.info(
            "Canary of %s live; baking %s watching %s",
            self.target["name"],
            canary,
            self.alarms or "no alarms",
        )
        self.defer(
            trigger=AlarmWatchTrigger(
                aws_conn_id=self.aws_conn_id,
                alarms=self.alarms,
                until=until.isoformat(),
                poll_seconds=self.poll_seconds,
                insufficient_data=self.insufficient_data,
            ),
            method_name="promote_canary",
            timeout=deferral_timeout(canary),
        )

    def promote_canary(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the canary bake: promote when the alarms stayed OK, else fail (rollback follows)."""
        name = self.target["name"]
        event = event or {}
        detail = context["ti"].xcom_pull(task_ids=self.task_id, key="canary")
        if event.get("status") != "success":
            raise AirflowFailException(f"canary of {name} failed: {event.get('message', event)}")
        deployer = get_deployer(self.deploy)
        current = self.ledger.read(name).current
        ctx = self._context(deployer, context["run_id"], current, None)
        detail = _deployed(lambda: deployer.promote(ctx, detail), name)
        return self._record(context, name, current, detail)

    def _context(
        self,
        deployer: Deployer,
        run_id: str,
        current: LedgerEntry | None,
        tmp: Path | None,
        artifact: Path | None = None,
    ) -> DeployContext:
        return self.deploy_context(
            deployer,
            stage=self.stage,
            wave=self.wave,
            target=self.target,
            commit=self.commit,
            run_id=run_id,
            previous=current,
            tmp=tmp,
            artifact=artifact,
        )

    def _record(
        self, context: Context, name: str, current: LedgerEntry | None, detail: dict[str, Any]
    ) -> dict[str, Any]:
        run_id = context["run_id"]
        stored = self.artifacts.find(self.commit)
        entry = LedgerEntry(
            commit=self.commit,
            run_id=run_id,
            time=now_iso(),
            artifact=stored.uri if stored else "",
            stage=self.stage,
            wave=self.wave,
            detail=detail,
        )
        self.ledger.record_deploy(name, entry)
        self.log.info("%s now runs %s %s", name, self.commit[:12], detail or "")
        self._persist_link(context, detail)
        return {"target": name, "commit": self.commit, "previous": _commit(current)}

    def _persist_link(self, context: Context, detail: dict[str, Any]) -> None:
        region = detail.get("region") or self.target.get("region")
        if region and self.deploy.get("type") in DeployedResourceLink.formats:
            values = {k: v for k, v in detail.items() if isinstance(v, str)}
            DeployedResourceLink.persist(context, self, region, "aws", kind=self.deploy["type"], **values)


def _deployed(action: Any, name: str) -> dict[str, Any]:
    """Run a deployer action; a command failure or a configuration error fails the task without retry."""
    try:
        return action()
    except (CommandFailed, ValueError, LookupError) as err:
        raise AirflowFailException(f"deploy of target {name} failed: {err}") from err


def _commit(entry: LedgerEntry | None) -> str | None:
    return entry.commit if entry else None
