"""`handsoff trigger PIPELINE [--commit SHA]`: start a pipeline for a commit, from outside Airflow.

The git hooks call it too. The commit is resolved locally first (it must exist and be on the pipeline's
branch), then one run `merge-<sha12>` is created through the REST API. The run id makes the trigger
idempotent: Airflow answers 409 for a run id it has already seen, so a commit runs once however often it
is triggered. Exit codes: ``handsoff.cli.common.TriggerExit``. Never prints the password or the token.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from handsoff.cli.common import (
    Credentials,
    TriggerError,
    TriggerExit,
    credentials,
    fail,
    find_pipeline,
    specs_dir,
)
from handsoff.cli.registry import UsageError
from handsoff.factory.naming import again_run_id, merge_run_id
from handsoff.hooks.airflow_api import AirflowApi, AirflowApiError, AirflowAuthError, AirflowUnreachable
from handsoff.hooks.git import GitError, GitHook, NotOnBranchError
from handsoff.model.pipeline import Pipeline


@dataclass(frozen=True)
class MergeCommit:
    """A commit resolved on the pipeline's branch, as the run's conf carries it."""

    sha: str
    branch: str
    author: str
    message: str

    @property
    def run_id(self) -> str:
        """The run id of this commit: one run per commit."""
        return merge_run_id(self.sha)

    def conf(self) -> dict[str, Any]:
        """The run's conf."""
        return {"commit": self.sha, "branch": self.branch, "author": self.author, "message": self.message}


def _trigger_run(
    api: AirflowApi, pipeline: Pipeline, merge: MergeCommit, again: str | None
) -> tuple[str, bool]:
    """Create the run of `merge` (`again`: a new run that deploys it again, and why): (id, created)."""
    if again is None:
        return merge.run_id, api.trigger_dag_run(pipeline.id, merge.run_id, merge.conf()).created
    run_id = again_run_id(merge.sha, datetime.now(UTC))
    return run_id, api.trigger_dag_run(pipeline.id, run_id, {**merge.conf(), "again": again}).created


@dataclass(frozen=True)
class TriggerResult:
    """What happened: `created` False when the run already existed; `paused` when its DAG is paused."""

    pipeline: str
    commit: MergeCommit
    created: bool
    paused: bool | None = None
    run_id: str = ""


def resolve_commit(pipeline: Pipeline, commit: str | None) -> MergeCommit:
    """Resolve `commit` (None: the branch head) in the pipeline's repository, on its branch."""
    hook = GitHook(pipeline.source.repo)
    branch = pipeline.source.branch
    with tempfile.TemporaryDirectory(prefix="handsoff-trigger-") as tmp:
        try:
            mirror = hook.mirror(Path(tmp) / "mirror.git")
            info = hook.resolve(mirror, branch, commit)
            message = hook.message(mirror, info.sha)
        except NotOnBranchError as err:
            raise TriggerError(TriggerExit.NOT_ON_BRANCH, str(err)) from None
        except GitError as err:
            raise TriggerError(TriggerExit.UNKNOWN_COMMIT, str(err)) from None
    author = f"{info.author} <{info.author_email}>" if info.author_email else info.author
    return MergeCommit(sha=info.sha, branch=branch, author=author, message=message)


def trigger(
    pipeline: Pipeline, commit: str | None, credentials: Credentials, again: str | None = None
) -> TriggerResult:
    """Create run `merge-<sha12>` of `pipeline` for `commit` (with `again`, a reason: a new run that
    deploys it again); TriggerError when no run could be made."""
    merge = resolve_commit(pipeline, commit)
    try:
        api = AirflowApi(credentials.url, token=credentials.token)
    except ValueError as err:
        raise TriggerError(TriggerExit.USAGE, str(err)) from None
    try:
        if credentials.token is None and credentials.username is not None:
            api.login(credentials.username, credentials.password or "")
        run_id, created = _trigger_run(api, pipeline, merge, again)
        paused = api.is_paused(pipeline.id) if created else None
    except AirflowAuthError as err:
        hint = (
            "" if credentials.token or credentials.username else "; give a username and password or a token"
        )
        raise TriggerError(TriggerExit.AUTH, f"{err}{hint}") from None
    except AirflowUnreachable as err:
        raise TriggerError(TriggerExit.UNREACHABLE, str(err)) from None
    except AirflowApiError as err:
        raise TriggerError(TriggerExit.API, str(err)) from None
    return TriggerResult(pipeline.id, merge, created=created, paused=paused, run_id=run_id)


def describe(result: TriggerResult) -> list[str]:
    """The lines `handsoff trigger` prints for `result`."""
    sha12, run_id = result.commit.sha[:12], result.run_id or result.commit.run_id
    if not result.created:
        return [
            f"run {run_id} already exists for {sha12}; not triggered again "
            "(to deploy it again: --again --reason TEXT)"
        ]
    lines = [f"triggered {result.pipeline} run {run_id} for {sha12}"]
    if result.paused:
        lines.append(f"note: {result.pipeline} is paused; the run stays queued until it is unpaused")
    return lines


def trigger_command(args: argparse.Namespace) -> int:
    """Trigger the run; print what happened."""
    if args.again and not (args.reason or "").strip():
        raise UsageError("--again needs --reason: why the commit is deployed again (it is recorded)")
    if args.reason and not args.again:
        raise UsageError("--reason goes with --again")
    login = credentials(args)
    try:
        pipeline = find_pipeline(args.pipeline, specs_dir(args))
        result = trigger(pipeline, args.commit, login, args.reason.strip() if args.again else None)
    except TriggerError as err:
        return fail("trigger", str(err), err.code)
    print("\n".join(describe(result)))
    return TriggerExit.OK
