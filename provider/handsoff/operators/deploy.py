"""The deploy task: one target, one commit, recorded in the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from handsoff.commands import CommandFailed
from handsoff.deployers.base import DeployContext
from handsoff.deployers.registry import get_deployer
from handsoff.ledger import LedgerEntry, now_iso
from handsoff.operators.base import HandsoffOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class DeployTargetOperator(HandsoffOperator):
    """Deploy the run's stored artifact to one target through its deployer; record it in the ledger."""

    ui_color = "#dff0d8"

    def __init__(
        self,
        *,
        stage: str,
        wave: str,
        target: dict[str, str],
        deploy: dict[str, Any],
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.wave = wave
        self.target = target
        self.deploy = deploy

    def execute(self, context: Context) -> dict[str, Any]:
        name = self.target["name"]
        run_id = context["run_id"]
        record = self.ledger.read(name)
        current = record.current
        if current is not None and current.commit == self.commit and current.run_id == run_id:
            self.log.info("Target %s already runs %s from this run; nothing to do", name, self.commit[:12])
            return {"target": name, "commit": self.commit, "previous": _commit(record.previous)}
        deployer = get_deployer(self.deploy)
        with self.workspace() as tmp:
            (tmp / "artifact").mkdir()
            artifact = self.artifacts.fetch(self.commit, tmp / "artifact")
            previous_artifact = self._previous_artifact(current, tmp)
            ctx = DeployContext(
                pipeline=self.pipeline,
                stage=self.stage,
                wave=self.wave,
                target=name,
                target_fields=self.target,
                commit=self.commit,
                run_id=run_id,
                artifact=artifact,
                previous=current,
                previous_artifact=previous_artifact,
                workdir=self.git.checkout(self.commit, tmp / "src") if deployer.needs_checkout else None,
                aws_conn_id=self.aws_conn_id,
            )
            self.log.info(
                "Deploying %s to %s (previously %s)", self.commit[:12], name, _commit(current) or "nothing"
            )
            try:
                detail = deployer.deploy(ctx)
            except CommandFailed as err:
                raise AirflowFailException(str(err)) from err
        entry = LedgerEntry(
            commit=self.commit,
            run_id=run_id,
            time=now_iso(),
            artifact=self.artifacts.find(self.commit).uri,  # type: ignore[union-attr]
            stage=self.stage,
            wave=self.wave,
            detail=detail,
        )
        self.ledger.record_deploy(name, entry)
        self.log.info("%s now runs %s %s", name, self.commit[:12], detail or "")
        return {"target": name, "commit": self.commit, "previous": _commit(current)}

    def _previous_artifact(self, previous: LedgerEntry | None, tmp: Path) -> Path | None:
        if previous is None or self.artifacts.find(previous.commit) is None:
            return None
        (tmp / "previous").mkdir()
        return self.artifacts.fetch(previous.commit, tmp / "previous")


def _commit(entry: LedgerEntry | None) -> str | None:
    return entry.commit if entry else None
