"""Human approval in front of a stage or wave: Airflow's human-in-the-loop ApprovalOperator, assigned users.

Only the assigned approvers can answer (the API server checks the responding user's id against
`assigned_users`). Approve: the stage or wave goes on. Reject or no answer within the timeout: the task
fails with the reason, so nothing of that stage or wave deploys and the run fails (the outcome watcher
fires). The approval is never a rollback trigger: its task id is in no wave's failure tasks.

Spec strings are literal: nothing of the spec is a Jinja template (`template_fields` is only the commit,
which the factory's own template fills); the subject and body are written when the task runs.

The answer is evidence only when it is an assigned approver's: on approve, the task records the responder
that the API server authenticated in `store.approvals`, and every deploy behind it checks that record.
A task marked success by hand records nothing, so its deploys refuse. A cleared approval asks again and
forgets the earlier answer.

Waiting holds no worker slot: in Airflow 3.3 the task parks in AWAITING_INPUT (no triggerer involved);
the API server resumes it on an answer, the scheduler's timeout sweep when the timeout passes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException

from handsoff.model.durations import format_duration
from handsoff.model.pipeline import DEFAULT_AWS_CONN_ID
from handsoff.store.approvals import Approvals
from handsoff.store.objects import object_store

if TYPE_CHECKING:
    from airflow.sdk import Context


class DeploymentApprovalOperator(ApprovalOperator):
    """Ask `approvers` to approve deploying `where` (e.g. "stage prod"); fail on reject or timeout.

    `commit` is the template of the run's commit that the factory passes; `store` holds the approvals.
    """

    template_fields = ("commit",)
    ui_color = "#fff0c2"

    def __init__(
        self,
        *,
        pipeline: str,
        where: str,
        approvers: list[str],
        commit: str,
        instructions: str = "",
        deploys: list[str] | None = None,
        timeout: timedelta = timedelta(hours=24),
        store: str | None = None,
        aws_conn_id: str = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        self.pipeline = pipeline
        self.where = where
        self.approvers = list(approvers)
        self.instructions = instructions
        self.deploys = list(deploys or [])
        self.commit = commit
        self.store = store
        self.aws_conn_id = aws_conn_id
        super().__init__(
            subject=f"{pipeline}: approve {where}",
            body=None,
            assigned_users=[{"id": name, "name": name} for name in self.approvers],
            response_timeout=timeout,
            **kwargs,
        )

    @property
    def approvals(self) -> Approvals:
        """Where the answer is recorded for the deploys to check."""
        return Approvals(object_store(self.store, self.aws_conn_id), self.pipeline)

    def request_text(self, commit: str) -> tuple[str, str]:
        """The subject and body the approvers read; the spec's instructions appear as written."""
        short = commit[:12]
        lines = [self.instructions, ""] if self.instructions else []
        lines += [f"Approving deploys commit `{short}` of **{self.pipeline}** to:", ""]
        lines += [f"- {item}" for item in self.deploys]
        lines += [
            "",
            f"Approvers: {', '.join(self.approvers)}. No answer within "
            f"{format_duration(self.response_timeout)} ends the run without deploying.",
        ]
        return f"{self.pipeline}: approve {self.where} for commit {short}", "\n".join(lines)

    def execute(self, context: Context) -> Any:
        """Forget an earlier answer of this run (a cleared approval asks again), then ask the approvers."""
        self.approvals.withdraw(context["run_id"], self.where)
        self.subject, self.body = self.request_text(self.commit)
        return super().execute(context)

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
        if str(user.get("id", "")) not in self.approvers:  # the API server checks; a record needs both
            raise AirflowFailException(
                f"{self.where}: the answer came from {user.get('id')!r}, who is not one of "
                f"{', '.join(self.approvers)}; {self.where} was not deployed"
            )
        approval = self.approvals.record(context["run_id"], self.where, self.commit, user)
        who = user.get("name") or user.get("id")
        self.log.info("%s approved by %s at %s", self.where, who, approval["at"])
        return result
