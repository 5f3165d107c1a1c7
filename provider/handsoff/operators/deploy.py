"""The deploy task: one target, one commit, recorded in the ledger with where and how it was deployed.

In order: refuse a commit this pipeline found bad (`store.verdicts`); wait while an on-demand rollback
holds the pipeline, or end skipped if it stopped this run (`store.lease`); look at what runs there now
(`Deployer.observe`), mark the target in flight with it (`Ledger.begin_deploy`), deploy, and record the
deploy with that `before`, the resolved deployer, the target's fields and the connection it used.

A deployer with a canary (Lambda `canary`) first shifts part of the traffic, then the task defers while
the target's rollback alarms are watched for the canary bake, and promotes when they stay OK. A canary
that fails takes its traffic back itself before the task fails: no traffic stays on the new version.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from handsoff.deployers.base import DeployContext, Deployer
from handsoff.deployers.registry import get_deployer
from handsoff.hooks.shell import CommandFailed
from handsoff.links.aws import DeployedResourceLink
from handsoff.model.records import LedgerEntry, now_iso
from handsoff.operators.base import HandsoffOperator
from handsoff.store.approvals import Approvals
from handsoff.store.ledger import DeployInterrupted
from handsoff.triggers.alarms import AlarmWatchTrigger
from handsoff.utils.deferral import deferral_timeout

if TYPE_CHECKING:
    from airflow.sdk import Context

#: how often a deploy looks again whether an on-demand rollback still holds the pipeline
LEASE_RECHECK = timedelta(seconds=15)


class DeployTargetOperator(HandsoffOperator):
    """Deploy the run's stored artifact to one target through its deployer; record it in the ledger."""

    template_fields = ("commit",)
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
        approvals: list[dict[str, Any]] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.approvals = list(approvals or [])  # [{"where", "approvers"}] of the approvals in front
        self.stage = stage
        self.wave = wave
        self.target = target
        self.deploy = deploy
        self.alarms = alarms or {}
        self.poll_seconds = poll_seconds
        self.insufficient_data = insufficient_data

    @property
    def config(self) -> dict[str, Any]:
        """Where and how this task deploys, as the ledger records it (a rollback restores exactly there)."""
        return {
            "deploy": self.deploy,
            "target": self.target,
            "aws_conn_id": self.aws_conn_id,
            "repo": self.repo,
        }

    def execute(self, context: Context) -> dict[str, Any] | None:
        self.refuse_if_bad(context)
        approved = self._approved(context)
        if self._held_by_a_rollback(context):
            return None  # deferred until the lease is free; `resume` calls execute again
        name, run_id = self.target["name"], context["run_id"]
        deployer = get_deployer(self.deploy)
        with self.workspace() as tmp:
            (tmp / "artifact").mkdir()
            artifact = self.artifacts.fetch(self.commit, tmp / "artifact")
            current = self.ledger.read(name).current
            ctx = self._context(deployer, run_id, current, tmp, artifact)
            before = _deployed(lambda: deployer.observe(ctx), name)
            try:
                record = self.ledger.begin_deploy(name, run_id, self.commit, before, self.config)
            except DeployInterrupted as err:
                # A killed worker or scheduler left this deploy half done: never deploy blindly twice.
                raise AirflowFailException(str(err)) from None
            if record is None:
                self.log.info(
                    "Target %s already runs %s from this run; nothing to do", name, self.commit[:12]
                )
                return {
                    "target": name,
                    "commit": self.commit,
                    "previous": _commit(self.ledger.read(name).previous),
                }
            self.log.info("Deploying %s to %s (runs %s)", self.commit[:12], name, _commit(current) or before)
            detail = self._change(context, lambda: deployer.deploy(ctx))
        detail = {**detail, "before": before, **({"approved": approved} if approved else {})}
        canary = deployer.canary_bake()
        if canary and detail.get("canary_version"):  # the deployer split traffic: bake it, then promote
            context["ti"].xcom_push(key="canary", value=detail)  # survives the deferral
            self._defer_for_canary(canary)
        return self._record(context, name, current, detail)

    def _approved(self, context: Context) -> list[dict[str, Any]]:
        """The recorded approvals this deploy stands behind; refuse when one is missing or not an
        approver's (the approval task's state proves nothing: it can be marked success by hand)."""
        records = []
        for approval in self.approvals:
            where, run_id = approval["where"], context["run_id"]
            why = self.recorded_approvals.missing(run_id, where, self.commit, approval["approvers"])
            if why:
                raise AirflowFailException(f"{self.target['name']} not deployed: {why}")
            records.append(self.recorded_approvals.read(context["run_id"], where))
        return [{"where": r["where"], "by": r["by"]["id"], "at": r["at"]} for r in records]

    @property
    def recorded_approvals(self) -> Approvals:
        """The answers of this pipeline's approval tasks."""
        return Approvals(self.documents, self.pipeline)

    def resume(self, context: Context, event: Any = None) -> dict[str, Any] | None:
        """After waiting for the pipeline's lease: start again from the top."""
        return self.execute(context)

    def _held_by_a_rollback(self, context: Context) -> bool:
        """Skip when an on-demand rollback stopped this run; defer (True) while one holds the pipeline."""
        lease = self.lease.holder()
        if lease is None:
            return False
        if context["run_id"] in lease.get("stopped", []):
            raise AirflowSkipException(
                f"stopped by rollback run {lease['holder']} ({lease.get('reason')}): "
                "this deploy does not start"
            )
        self.log.info(
            "Rollback run %s holds %s (%s); waiting", lease["holder"], self.pipeline, lease.get("reason")
        )
        self.defer(
            trigger=DateTimeTrigger(moment=datetime.now(UTC) + LEASE_RECHECK),
            method_name="resume",
            timeout=deferral_timeout(LEASE_RECHECK),
        )
        return True

    def _change(self, context: Context, action: Any) -> dict[str, Any]:
        """Run a deployer action that changes the target; on failure the mark says so (and keeps what ran
        before) and the run's verdict records it, before the task fails."""
        name = self.target["name"]
        try:
            return _deployed(action, name)
        except Exception as err:
            self.ledger.fail_deploy(name)
            self.found_bad(context, str(err) if isinstance(err, AirflowFailException) else f"{name}: {err}")
            raise

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
        """Resume after the canary bake: promote when the alarms stayed OK; else take the canary's traffic
        back (the target serves what it served before), record that, and fail (the rollback follows)."""
        name = self.target["name"]
        event = event or {}
        detail = context["ti"].xcom_pull(task_ids=self.task_id, key="canary")
        deployer = get_deployer(self.deploy)
        current = self.ledger.read(name).current
        ctx = self._context(deployer, context["run_id"], current, None)
        if event.get("status") != "success":
            why = f"canary of {name} failed: {event.get('message', event)}"
            self._abort_canary(context, deployer, ctx, detail, why)
            raise AirflowFailException(why)
        self.refuse_if_bad(context)
        detail = self._change(context, lambda: {**deployer.promote(ctx, detail), "before": detail["before"]})
        return self._record(context, name, current, detail)

    def _abort_canary(
        self, context: Context, deployer: Deployer, ctx: DeployContext, detail: dict[str, Any], why: str
    ) -> None:
        name = self.target["name"]
        self.found_bad(context, why)
        self._change(context, lambda: deployer.abort_canary(ctx, detail))
        note = f"canary of {self.commit[:12]} failed and was taken back: {why}"
        entry = LedgerEntry(
            commit=self.commit,
            run_id=context["run_id"],
            time=now_iso(),
            action="canary-failed",
            stage=self.stage,
            wave=self.wave,
            note=note,
            detail=detail,
            config=self.config,
        )
        self.ledger.record_event(name, entry)
        self.ledger.end_deploy(name)  # the target serves exactly what it served before the canary
        self.log.warning("%s", note)

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
            config=self.config,
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


def _deployed(action: Any, name: str) -> Any:
    """Run a deployer action; a command failure or a configuration error fails the task without retry."""
    try:
        return action()
    except (CommandFailed, ValueError, LookupError) as err:
        raise AirflowFailException(f"deploy of target {name} failed: {err}") from err


def _commit(entry: LedgerEntry | None) -> str | None:
    return entry.commit if entry else None
