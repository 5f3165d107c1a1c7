"""Human approval in front of a stage or wave: Airflow's human-in-the-loop ApprovalOperator, assigned users.

Only the assigned approvers can answer (the API server checks the responding user's id against
`assigned_users`). Approve: the stage or wave goes on. Reject or no answer within the timeout: the task
fails with the reason, so nothing of that stage or wave deploys and the run fails (the outcome watcher
fires). The approval is never a rollback trigger: its task id is in no wave's failure tasks.

Waiting holds no worker slot: in Airflow 3.3 the task parks in AWAITING_INPUT (no triggerer involved);
the API server resumes it on an answer, the scheduler's timeout sweep when the timeout passes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException

from handsoff.model.durations import format_duration

if TYPE_CHECKING:
    from airflow.sdk import Context


class DeploymentApprovalOperator(ApprovalOperator):
    """Ask `approvers` to approve deploying `where` (e.g. "stage prod"); fail on reject or timeout.

    `commit_short` is the template of the run's commit (12 characters) that the factory passes.
    """

    ui_color = "#fff0c2"

    def __init__(
        self,
        *,
        pipeline: str,
        where: str,
        approvers: list[str],
        commit_short: str,
        instructions: str = "",
        deploys: list[str] | None = None,
        timeout: timedelta = timedelta(hours=24),
        **kwargs: Any,
    ) -> None:
        self.where = where
        self.approvers = list(approvers)
        lines = [instructions, ""] if instructions else []
        lines += [f"Approving deploys commit `{commit_short}` of **{pipeline}** to:", ""]
        lines += [f"- {item}" for item in deploys or []]
        lines += [
            "",
            f"Approvers: {', '.join(self.approvers)}. No answer within {format_duration(timeout)} "
            "ends the run without deploying.",
        ]
        super().__init__(
            subject=f"{pipeline}: approve {where} for commit {commit_short}",
            body="\n".join(lines),
            assigned_users=[{"id": name, "name": name} for name in self.approvers],
            response_timeout=timeout,
            **kwargs,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Approve: go on. Reject or timeout: fail with the reason (never only skip: the run must fail)."""
        if event.get("error_type") == "timeout":
            raise AirflowFailException(
                f"approval of {self.where} timed out: no answer from {', '.join(self.approvers)} within "
                f"{format_duration(self.response_timeout)}; {self.where} was not deployed"
            )
        if "error" not in event and self.REJECT in (event.get("chosen_options") or []):
            user = event.get("responded_by_user") or {}
            who = user.get("name") or user.get("id") or "an approver"
            raise AirflowFailException(f"{self.where} rejected by {who}; {self.where} was not deployed")
        result = super().execute_complete(context=context, event=event)
        user = event.get("responded_by_user") or {}
        self.log.info("%s approved by %s", self.where, user.get("name") or user.get("id"))
        return result
