"""Bake: wait a fixed time after a wave or stage, holding no worker slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseSensorOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

_TIMEOUT_MARGIN = timedelta(minutes=10)


class BakeSensor(BaseSensorOperator):
    """Succeed once `bake_seconds` have passed since the task started.

    Deferrable by default: the wait happens in the triggerer (DateTimeTrigger), not a worker slot.
    """

    template_fields = ()
    ui_color = "#fbe9e7"

    def __init__(self, *, bake_seconds: int, deferrable: bool = True, **kwargs) -> None:
        kwargs.setdefault("poke_interval", min(60.0, max(1.0, bake_seconds / 10)))
        kwargs.setdefault("timeout", bake_seconds + _TIMEOUT_MARGIN.total_seconds())
        super().__init__(**kwargs)
        self.bake_seconds = bake_seconds
        self.deferrable = deferrable
        self._until: datetime | None = None

    def execute(self, context: Context) -> None:
        self._until = datetime.now(UTC) + timedelta(seconds=self.bake_seconds)
        self.log.info("Baking for %ss, until %s", self.bake_seconds, self._until.isoformat())
        if self.bake_seconds <= 0:
            return
        if not self.deferrable:
            super().execute(context)
            return
        self.defer(
            trigger=DateTimeTrigger(moment=self._until),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.bake_seconds) + _TIMEOUT_MARGIN,
        )

    def poke(self, context: Context) -> bool:
        return self._until is not None and datetime.now(UTC) >= self._until

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Resume after the trigger fired: the bake is over."""
        self.log.info("Bake of %ss complete", self.bake_seconds)
