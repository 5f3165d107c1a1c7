"""Blockers: before a wave, wait while any blocker alarm is in ALARM, holding no worker slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from handsoff.links.aws import CloudWatchAlarmsLink
from handsoff.model.pipeline import DEFAULT_AWS_CONN_ID
from handsoff.sensors.base import AlarmReadingMixin
from handsoff.triggers.alarms import BlockerTrigger
from handsoff.utils.alarms import BLOCKED, CLEAR, blocker_verdict, check_alarms, check_policy, firing_message
from handsoff.utils.deferral import deferral_timeout

if TYPE_CHECKING:
    from airflow.sdk import Context


class BlockerSensor(AlarmReadingMixin, BaseSensorOperator):
    """Succeed as soon as no blocker alarm counts as ALARM; fail after `timeout_seconds` still blocked.

    `alarms` maps a region to alarm names. INSUFFICIENT_DATA counts as ALARM under
    `insufficient_data="alarm"`. Fails closed: a missing alarm fails the task; AWS errors are retried with
    backoff (in the triggerer; `aws_retries` attempts, not to be confused with the task's `retries`) and
    then fail it. Checks once in the worker first: a clear wave does not
    wait for the triggerer.
    """

    template_fields = ()  # spec strings (alarm names) are literal: nothing here is a Jinja template
    operator_extra_links = (CloudWatchAlarmsLink(),)
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        alarms: dict[str, list[str]],
        timeout_seconds: int,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        poll_seconds: float = 30,
        insufficient_data: str = "alarm",
        aws_retries: int = 5,
        backoff_seconds: float = 1.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        check_alarms(alarms)
        check_policy(insufficient_data)
        kwargs.setdefault("poke_interval", poll_seconds)
        kwargs.setdefault("timeout", deferral_timeout(timedelta(seconds=timeout_seconds)).total_seconds())
        super().__init__(**kwargs)
        self.alarms = alarms
        self.timeout_seconds = timeout_seconds
        self.aws_conn_id = aws_conn_id
        self.poll_seconds = poll_seconds
        self.insufficient_data = insufficient_data
        self.aws_retries = aws_retries
        self.backoff_seconds = backoff_seconds
        self.deferrable = deferrable
        self._timeout_at: datetime | None = None

    def execute(self, context: Context) -> None:
        self._timeout_at = datetime.now(UTC) + timedelta(seconds=self.timeout_seconds)
        self.persist_alarms_link(context)
        states = self.poke_read("read blocker alarm states", self.read_states)
        if states is not None:
            names, message = firing_message("blocker", states, self.insufficient_data)
            if not names:
                self.log.info("No blocker alarm in ALARM: go")
                return
            self.log.info("Blocked until %s at most: %s", self._timeout_at.isoformat(), message)
        if not self.deferrable:
            super().execute(context)
            return
        self.defer(
            trigger=BlockerTrigger(
                aws_conn_id=self.aws_conn_id,
                alarms=self.alarms,
                timeout_at=self._timeout_at.isoformat(),
                poll_seconds=self.poll_seconds,
                insufficient_data=self.insufficient_data,
                retries=self.aws_retries,
                backoff_seconds=self.backoff_seconds,
            ),
            method_name="execute_complete",
            timeout=deferral_timeout(timedelta(seconds=self.timeout_seconds)),
        )

    def poke(self, context: Context) -> bool:
        states = self.poke_read("read blocker alarm states", self.read_states)
        if states is None:
            return False
        timeout_at = self._timeout_at or datetime.max.replace(tzinfo=UTC)
        verdict = blocker_verdict(states, self.insufficient_data, datetime.now(UTC), timeout_at)
        if verdict.outcome == BLOCKED:
            raise AirflowException(
                f"still blocked at the blocker timeout ({self.timeout_seconds}s): {verdict.message}"
            )
        return verdict.outcome == CLEAR

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Resume after the trigger: return when clear, raise with the trigger's message otherwise."""
        status = event.get("status") if isinstance(event, dict) else None
        if status == "clear":
            self.log.info("%s", event.get("message", "clear"))
            return
        if status == "error" and event.get("alarms"):
            raise AirflowFailException(event["message"])
        if status in ("blocked", "error"):
            raise AirflowException(event.get("message") or f"blocker {status}")
        raise AirflowException(f"unexpected event from the blocker trigger: {event!r}")
