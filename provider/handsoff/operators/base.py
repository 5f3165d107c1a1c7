"""What every handsoff operator shares: the pipeline it belongs to, its store and ledger, its workspace."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path

from airflow.sdk import BaseOperator

from handsoff.deployers.base import DeployContext, Deployer
from handsoff.hooks.git import GitHook
from handsoff.model.pipeline import DEFAULT_AWS_CONN_ID
from handsoff.model.records import LedgerEntry
from handsoff.store.artifacts import ArtifactStore, store_root
from handsoff.store.lease import PipelineLease
from handsoff.store.ledger import Ledger
from handsoff.store.objects import ObjectStore, object_store
from handsoff.utils.verdicts import VerdictMixin


class HandsoffOperator(VerdictMixin, BaseOperator):
    """Base of the pipeline's operators. `commit` is the commit the run deploys: the factory passes the
    template that renders it from the source task at run time ("" for the tasks that find it out)."""

    template_fields: tuple[str, ...] = ("commit",)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        pipeline: str,
        repo: str,
        commit: str = "",
        store: str | None = None,
        aws_conn_id: str = DEFAULT_AWS_CONN_ID,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.repo = repo
        self.store = store
        self.aws_conn_id = aws_conn_id
        self.commit = commit

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """This pipeline's artifact store."""
        return ArtifactStore(store_root(self.store, self.aws_conn_id), self.pipeline)

    @cached_property
    def documents(self) -> ObjectStore:
        """The store's conditionally written documents (ledger, lease, verdicts)."""
        return object_store(self.store, self.aws_conn_id)

    @cached_property
    def ledger(self) -> Ledger:
        """This pipeline's deployment ledger."""
        return Ledger(self.documents, self.pipeline)

    @cached_property
    def lease(self) -> PipelineLease:
        """This pipeline's lease (held by an on-demand rollback while it restores)."""
        return PipelineLease(self.documents, self.pipeline)

    @cached_property
    def git(self) -> GitHook:
        """The source repository."""
        return GitHook(self.repo)

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        """A temporary folder removed when the task ends."""
        with tempfile.TemporaryDirectory(prefix=f"handsoff-{self.pipeline}-") as tmp:
            yield Path(tmp)

    def fetch_stored(self, commit: str | None, dest: Path) -> Path | None:
        """The stored artifact of `commit`, copied into the new folder `dest`; None when none is stored."""
        if not commit or self.artifacts.find(commit) is None:
            return None
        dest.mkdir()
        return self.artifacts.fetch(commit, dest)

    def deploy_context(
        self,
        deployer: Deployer,
        *,
        stage: str,
        wave: str,
        target: Mapping[str, str],
        commit: str,
        run_id: str,
        previous: LedgerEntry | None,
        tmp: Path | None,
        artifact: Path | None = None,
        aws_conn_id: str | None = None,
    ) -> DeployContext:
        """What `deployer` needs for `target`: the artifact of `commit` (given, else fetched into `tmp` when
        stored), the artifact of `previous`, a checkout of `commit` when the deployer works in one; the
        target's connection (`aws_conn_id`, default the operator's)."""
        previous_artifact = workdir = None
        if tmp is not None:
            artifact = artifact or self.fetch_stored(commit, tmp / "artifact")
            previous_artifact = self.fetch_stored(previous.commit if previous else None, tmp / "previous")
            workdir = self.git.checkout(commit, tmp / "src") if deployer.needs_checkout else None
        return DeployContext(
            pipeline=self.pipeline,
            stage=stage,
            wave=wave,
            target=target["name"],
            target_fields=target,
            commit=commit,
            run_id=run_id,
            artifact=artifact,
            previous=previous,
            previous_artifact=previous_artifact,
            workdir=workdir,
            aws_conn_id=aws_conn_id or self.aws_conn_id,
        )
