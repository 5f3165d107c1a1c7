"""What every handsoff operator shares: the pipeline it belongs to, its store and ledger."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from airflow.sdk import BaseOperator

from handsoff.artifacts import ArtifactStore, store_root
from handsoff.hooks.git import GitHook
from handsoff.ledger import Ledger

#: Jinja expression for the commit the run deploys (pushed by the `source` task).
RUN_COMMIT = "{{ ti.xcom_pull(task_ids='source', key='commit') }}"


class HandsoffOperator(BaseOperator):
    """Base of the pipeline's operators: `commit` is rendered from the source task at run time."""

    template_fields: tuple[str, ...] = ("commit",)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        pipeline: str,
        repo: str,
        store: str | None = None,
        aws_conn_id: str = "aws_default",
        commit: str = RUN_COMMIT,
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
    def ledger(self) -> Ledger:
        """This pipeline's deployment ledger."""
        return Ledger(store_root(self.store, self.aws_conn_id), self.pipeline)

    @cached_property
    def git(self) -> GitHook:
        """The source repository."""
        return GitHook(self.repo)

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        """A temporary folder removed when the task ends."""
        with tempfile.TemporaryDirectory(prefix=f"handsoff-{self.pipeline}-") as tmp:
            yield Path(tmp)
