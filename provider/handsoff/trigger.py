"""Start a pipeline for a commit from outside Airflow: `handsoff trigger` and the git hooks.

The commit is resolved locally first (it must exist and be on the pipeline's branch), then one run
`merge-<sha12>` is created through the REST API. The run id makes the trigger idempotent: Airflow answers
409 for a run id it has already seen, so a commit runs once however often it is triggered.
"""

from __future__ import annotations

import enum
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handsoff.airflow_api import AirflowApi, AirflowApiError, AirflowAuthError, AirflowUnreachable
from handsoff.hooks.git import GitError, GitHook, NotOnBranchError
from handsoff.model import Pipeline
from handsoff.spec import SpecErrors, load_pipeline, pipeline_file_for

RUN_ID_PREFIX = "merge-"


class TriggerExit(enum.IntEnum):
    """Exit codes of `handsoff trigger` (2 is argparse's usage error)."""

    OK = 0  # triggered, or the run already existed
    USAGE = 2
    UNKNOWN_PIPELINE = 3  # no spec defines it, or its spec is invalid
    UNKNOWN_COMMIT = 4  # commit, branch or repository not found
    NOT_ON_BRANCH = 5
    AUTH = 6  # login or token refused (401/403)
    UNREACHABLE = 7  # connection refused, unknown host, timeout
    API = 8  # Airflow refused otherwise: DAG not found, bad request, server error


class TriggerError(Exception):
    """A trigger that did not happen; `code` is the exit status, the message one line."""

    def __init__(self, code: TriggerExit, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Credentials:
    """How to reach Airflow: a token, or a username and password (both None: no login)."""

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None


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
        return run_id_for(self.sha)

    def conf(self) -> dict[str, Any]:
        """The run's conf."""
        return {"commit": self.sha, "branch": self.branch, "author": self.author, "message": self.message}


@dataclass(frozen=True)
class TriggerResult:
    """What happened: `created` False when the run already existed; `paused` when its DAG is paused."""

    pipeline: str
    commit: MergeCommit
    created: bool
    paused: bool | None = None


def run_id_for(sha: str) -> str:
    """`merge-` and the first 12 characters of the SHA."""
    return f"{RUN_ID_PREFIX}{sha[:12]}"


def find_pipeline(pipeline_id: str, specs_dir: Path) -> Pipeline:
    """The pipeline `pipeline_id` of the specs folder; TriggerError when missing or invalid."""
    path = pipeline_file_for(specs_dir, pipeline_id) if specs_dir.is_dir() else None
    if path is None:
        raise TriggerError(TriggerExit.UNKNOWN_PIPELINE, f"no pipeline {pipeline_id!r} in {specs_dir}")
    try:
        return load_pipeline(path, specs_dir)
    except SpecErrors as exc:
        more = f" (and {len(exc.issues) - 1} more; run `handsoff validate`)" if len(exc.issues) > 1 else ""
        raise TriggerError(
            TriggerExit.UNKNOWN_PIPELINE,
            f"pipeline {pipeline_id!r} has an invalid spec: {exc.issues[0]}{more}",
        ) from None


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


def trigger(pipeline: Pipeline, commit: str | None, credentials: Credentials) -> TriggerResult:
    """Create run `merge-<sha12>` of `pipeline` for `commit`; TriggerError when no run could be made."""
    merge = resolve_commit(pipeline, commit)
    try:
        api = AirflowApi(credentials.url, token=credentials.token)
    except ValueError as err:
        raise TriggerError(TriggerExit.USAGE, str(err)) from None
    try:
        if credentials.token is None and credentials.username is not None:
            api.login(credentials.username, credentials.password or "")
        run = api.trigger_dag_run(pipeline.id, merge.run_id, merge.conf())
        paused = api.is_paused(pipeline.id) if run.created else None
    except AirflowAuthError as err:
        hint = (
            "" if credentials.token or credentials.username else "; give a username and password or a token"
        )
        raise TriggerError(TriggerExit.AUTH, f"{err}{hint}") from None
    except AirflowUnreachable as err:
        raise TriggerError(TriggerExit.UNREACHABLE, str(err)) from None
    except AirflowApiError as err:
        raise TriggerError(TriggerExit.API, str(err)) from None
    return TriggerResult(pipeline.id, merge, created=run.created, paused=paused)


def describe(result: TriggerResult) -> list[str]:
    """The lines `handsoff trigger` prints for `result`."""
    sha12, run_id = result.commit.sha[:12], result.commit.run_id
    if not result.created:
        return [f"run {run_id} already exists for {sha12}; not triggered again"]
    lines = [f"triggered {result.pipeline} run {run_id} for {sha12}"]
    if result.paused:
        lines.append(f"note: {result.pipeline} is paused; the run stays queued until it is unpaused")
    return lines
