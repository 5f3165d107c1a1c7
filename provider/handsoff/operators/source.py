"""The source task: decide which commit the run deploys."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from handsoff.hooks.git import GitError, GitHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class ResolveSourceOperator(BaseOperator):
    """Resolve `conf.commit` (full or abbreviated SHA) or the branch head; push it as XCom `commit`."""

    ui_color = "#fdf5e6"

    def __init__(self, *, repo: str, branch: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.repo = repo
        self.branch = branch

    def execute(self, context: Context) -> dict[str, Any]:
        conf = context["dag_run"].conf or {}
        requested = conf.get("commit") or None
        hook = GitHook(self.repo)
        with tempfile.TemporaryDirectory(prefix="handsoff-source-") as tmp:
            try:
                info = hook.resolve(hook.mirror(f"{tmp}/mirror.git"), self.branch, requested)
            except GitError as err:
                # Retrying cannot make an unknown commit known: fail now, with the reason.
                raise AirflowFailException(str(err)) from err
        self.log.info("Deploying commit %s (%s) by %s: %s", info.sha, self.branch, info.author, info.subject)
        context["ti"].xcom_push(key="commit", value=info.sha)
        return {"commit": info.sha, "branch": self.branch, "author": info.author, "subject": info.subject}
