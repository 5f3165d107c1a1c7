"""What a run has found out about its commit, kept where a cleared or hand-marked task cannot undo it.

A mixin for the tasks that find a change bad (deploys, canaries, test shards, bakes) and for those that
would promote it (deploys): `found_bad` records the verdict the moment the task fails, `refuse_if_bad`
stops a task of a run whose commit a run found bad (`handsoff.store.verdicts`).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from handsoff.store.objects import object_store
from handsoff.store.verdicts import Verdicts, describe

if TYPE_CHECKING:
    from airflow.sdk import Context

AGAIN_HINT = (
    "deploying it again takes a new run: handsoff trigger {pipeline} --commit {commit} --again --reason …"
)


class VerdictMixin:
    """For tasks with `pipeline`, `store`, `aws_conn_id`, `commit` (rendered) and `task_id`."""

    pipeline: str | None
    store: str | None
    aws_conn_id: str | None
    commit: str
    task_id: str
    log: Any

    @cached_property
    def verdicts(self) -> Verdicts:
        """The pipeline's verdicts on its commits."""
        return Verdicts(object_store(self.store, self.aws_conn_id), self.pipeline or "")

    def found_bad(self, context: Context, why: str) -> None:
        """Record that this run found its commit bad here, because `why` (before the task fails)."""
        if not self.pipeline or not self.commit:
            return
        try:
            self.verdicts.record_bad(self.commit, context["run_id"], self.task_id, why)
        except Exception as err:  # the task fails anyway; the rollback plan records it again
            self.log.error("Could not record the verdict on %s: %s", self.commit[:12], err)

    def refuse_if_bad(self, context: Context) -> None:
        """Fail when a run found this commit bad (whatever this task's upstream states say now)."""
        if not self.pipeline or not self.commit:
            return
        verdict = self.verdicts.blocking(self.commit, context["run_id"])
        if verdict is not None:
            hint = AGAIN_HINT.format(pipeline=self.pipeline, commit=self.commit[:12])
            raise AirflowFailException(f"not promoting {self.commit[:12]}: {describe(verdict)}; {hint}")
