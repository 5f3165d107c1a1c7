"""A test shard: one slice of a stage's test suite, run against the stored artifact."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

from handsoff.hooks.shell import CommandFailed, handsoff_env, run_command
from handsoff.model.durations import parse_duration
from handsoff.operators.base import HandsoffOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RunTestShardOperator(HandsoffOperator):
    """Run shard `shard_index` of `shard_total` of a test command (mapped once per shard)."""

    ui_color = "#e6e0f8"

    def __init__(
        self,
        *,
        stage: str,
        test: str,
        command: str,
        shard_total: int,
        shard_index: int = 0,
        timeout: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.test = test
        self.command = command
        self.shard_total = shard_total
        self.shard_index = shard_index
        self.timeout = timeout

    def execute(self, context: Context) -> None:
        label = f"{self.test} shard {self.shard_index + 1}/{self.shard_total}"
        with self.workspace() as tmp:
            (tmp / "artifact").mkdir()
            artifact = self.artifacts.fetch(self.commit, tmp / "artifact")
            checkout = self.git.checkout(self.commit, tmp / "src")
            env = handsoff_env(
                pipeline=self.pipeline,
                commit=self.commit,
                stage=self.stage,
                run_id=context["run_id"],
                artifact=str(artifact),
                test=self.test,
                shard_index=self.shard_index,
                shard_total=self.shard_total,
            )
            timeout = parse_duration(self.timeout) if self.timeout else None
            try:
                run_command(label, self.command, env=env, cwd=checkout, timeout=timeout)
            except CommandFailed as err:
                self.found_bad(context, f"{self.stage} tests: {err}")
                raise AirflowFailException(str(err)) from err
        self.log.info("%s passed", label)
