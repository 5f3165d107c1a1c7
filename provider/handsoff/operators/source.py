"""The source task: decide which commit the run deploys, or that the run has nothing to do."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from handsoff.hooks.git import GitError, GitHook
from handsoff.links.source import CommitLink
from handsoff.operators.base import HandsoffOperator
from handsoff.store.verdicts import describe
from handsoff.utils.superseding import newer_waiting_run, override_reason, skip_superseded
from handsoff.utils.verdicts import AGAIN_HINT

if TYPE_CHECKING:
    from airflow.sdk import Context


class ResolveSourceOperator(HandsoffOperator):
    """Resolve `conf.commit` (full or abbreviated SHA) or the branch head; push it as XCom `commit_key`.

    Before anything else, in `execution_mode` "superseded", the run ends skipped ("superseded by <run
    id>") when a newer run is queued behind it, unless its conf overrides the windows. A scheduled run
    (one per window opening, deploying the branch head) ends skipped when the head already runs on every
    target of the pipeline's last wave (`last_wave`, target names), as the ledger records.
    """

    template_fields = ()
    ui_color = "#fdf5e6"
    operator_extra_links = (CommitLink(),)

    def __init__(
        self,
        *,
        branch: str,
        commit_key: str,
        execution_mode: str = "superseded",
        last_wave: list[str] | None = None,
        commit_url: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.commit_key = commit_key
        self.execution_mode = execution_mode
        self.last_wave = last_wave or []
        self.commit_url = commit_url

    #: what a run's conf may carry (from `handsoff trigger`, the git hook and the trigger form)
    CONF_KEYS = frozenset({"commit", "branch", "author", "message", "override_window", "again"})

    def execute(self, context: Context) -> dict[str, Any]:
        dag_run = context["dag_run"]
        self._check_conf(dag_run.conf or {})
        if self.execution_mode == "superseded" and not override_reason(context):
            newer = newer_waiting_run(context, first_task=self.task_id)
            if newer is not None:
                skip_superseded(context, newer, f"{self.task_id}, before building")
        requested = (dag_run.conf or {}).get("commit") or None
        hook = GitHook(self.repo)
        with tempfile.TemporaryDirectory(prefix="handsoff-source-") as tmp:
            try:
                info = hook.resolve(hook.mirror(f"{tmp}/mirror.git"), self.branch, requested)
            except GitError as err:
                # Retrying cannot make an unknown commit known: fail now, with the reason.
                raise AirflowFailException(str(err)) from err
        if dag_run.run_type == "scheduled" and requested is None:
            self._skip_when_deployed(info.sha)
        self._check_verdicts(context, info.sha)
        self.log.info("Deploying commit %s (%s) by %s: %s", info.sha, self.branch, info.author, info.subject)
        context["ti"].xcom_push(key=self.commit_key, value=info.sha)
        if self.commit_url:
            CommitLink.persist(context, template=self.commit_url, commit=info.sha)
        return {"commit": info.sha, "branch": self.branch, "author": info.author, "subject": info.subject}

    def _check_conf(self, conf: dict[str, Any]) -> None:
        """Refuse unknown conf keys and a branch other than the pipeline's (values are never executed)."""
        unknown = sorted(set(conf) - self.CONF_KEYS)
        if unknown:
            allowed = ", ".join(sorted(self.CONF_KEYS))
            raise AirflowFailException(f"unknown run conf key(s) {unknown}; allowed: {allowed}")
        branch = conf.get("branch")
        if branch not in (None, "", self.branch):
            raise AirflowFailException(f"run conf branch {branch!r} is not the pipeline's {self.branch!r}")

    def _check_verdicts(self, context: Context, sha: str) -> None:
        """Go on only with a commit no run found bad, or with an explicit request to deploy it again."""
        dag_run = context["dag_run"]
        verdict = self.verdicts.blocking(sha, dag_run.run_id)
        if verdict is None:
            return
        again = str((dag_run.conf or {}).get("again") or "").strip()
        if again:
            by = getattr(dag_run, "triggering_user_name", None) or "unknown"
            self.verdicts.allow_again(sha, dag_run.run_id, by, again)
            self.log.warning(
                "Deploying %s again as %s asked (%s); earlier: %s", sha[:12], by, again, describe(verdict)
            )
            return
        message = f"commit {sha[:12]}: {describe(verdict)}; not deploying it again"
        if dag_run.run_type == "scheduled":
            raise AirflowSkipException(message)
        hint = AGAIN_HINT.format(pipeline=self.pipeline, commit=sha[:12])
        raise AirflowFailException(f"{message}: {hint}")

    def _skip_when_deployed(self, sha: str) -> None:
        """Skip the scheduled run when `sha` already runs on every target of the last wave."""
        running = {name: self.ledger.read(name).current for name in self.last_wave}
        if running and all(entry is not None and entry.commit == sha for entry in running.values()):
            raise AirflowSkipException(
                f"scheduled run: {sha[:12]}, the head of {self.branch}, already runs on the last wave "
                f"({', '.join(running)}); nothing new to deploy"
            )
