"""Blockers: before a wave, wait while any blocker alarm is in ALARM, holding no worker slot."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from botocore.exceptions import BotoCoreError, ClientError

from handsoff.hooks.cloudwatch import AlarmsNotFound, CloudWatchAlarmHook, check_policy, is_retryable
from handsoff.links.aws import CloudWatchAlarmsLink
from handsoff.triggers.alarms import BlockerTrigger, check_alarms, firing_message

if TYPE_CHECKING:
    from airflow.sdk import Context

T = TypeVar("T")
_TIMEOUT_MARGIN = timedelta(minutes=10)


class AlarmReadingMixin:
    """Synchronous alarm reads for sensors (the first check, and poke mode when not deferrable).

    Needs `aws_conn_id`, `alarms` and `aws_retries` on the operator. In poke mode an AWS error that may pass
    makes the poke return "not yet" (the poke interval is the backoff) up to `aws_retries` times in a row;
    then the task fails. A missing alarm fails it at once.
    """

    aws_conn_id: str | None
    alarms: dict[str, list[str]] | None
    aws_retries: int
    log: Any
    _cw_hooks: dict[str, CloudWatchAlarmHook]

    def persist_alarms_link(self, context: Context) -> None:
        """Store the "CloudWatch alarms" extra link (the first region's alarms) for the UI."""
        for region, names in (self.alarms or {}).items():
            if region and names:
                search = CloudWatchAlarmsLink.search_for(names)
                CloudWatchAlarmsLink.persist(context, self, region, "aws", search=search)
                return

    _cw_failures: int

    def hook(self, region: str) -> CloudWatchAlarmHook:
        """The hook of `region` ("" → the connection's region)."""
        hooks = getattr(self, "_cw_hooks", None)
        if hooks is None:
            hooks = self._cw_hooks = {}
        if region not in hooks:
            hooks[region] = CloudWatchAlarmHook(aws_conn_id=self.aws_conn_id, region_name=region or None)
        return hooks[region]

    def read_states(self) -> dict[str, dict[str, str]]:
        """Region → {alarm name: state} for every watched alarm (raises AlarmsNotFound, botocore errors)."""
        return {
            region: self.hook(region).alarm_states(names)
            for region, names in (self.alarms or {}).items()
            if names
        }

    def poke_read(self, what: str, read: Callable[[], T]) -> T | None:
        """`read()`, or None after an AWS error that may pass; AirflowException once the errors run out."""
        try:
            value = read()
        except AlarmsNotFound as err:
            raise AirflowFailException(str(err)) from err
        except (BotoCoreError, ClientError) as err:
            failures = self._cw_failures = getattr(self, "_cw_failures", 0) + 1
            if not is_retryable(err):
                raise AirflowException(f"could not {what}: {err}") from err
            if failures >= self.aws_retries:
                raise AirflowException(f"could not {what} after {failures} attempts: {err}") from err
            self.log.warning("Could not %s (attempt %d/%d): %s", what, failures, self.aws_retries, err)
            return None
        self._cw_failures = 0
        return value


class BlockerSensor(AlarmReadingMixin, BaseSensorOperator):
    """Succeed as soon as no blocker alarm counts as ALARM; fail after `timeout_seconds` still blocked.

    `alarms` maps a region to alarm names. INSUFFICIENT_DATA counts as ALARM under
    `insufficient_data="alarm"`. Fails closed: a missing alarm fails the task; AWS errors are retried with
    backoff (in the triggerer; `aws_retries` attempts, not to be confused with the task's `retries`) and
    then fail it. Checks once in the worker first: a clear wave does not
    wait for the triggerer.
    """

    template_fields = ("alarms", "insufficient_data", "poll_seconds", "timeout_seconds")
    operator_extra_links = (CloudWatchAlarmsLink(),)
    template_fields_renderers = {"alarms": "json"}
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        alarms: dict[str, list[str]],
        timeout_seconds: int,
        aws_conn_id: str | None = "aws_default",
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
        kwargs.setdefault("timeout", timeout_seconds + _TIMEOUT_MARGIN.total_seconds())
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
            timeout=timedelta(seconds=self.timeout_seconds) + _TIMEOUT_MARGIN,
        )

    def poke(self, context: Context) -> bool:
        states = self.poke_read("read blocker alarm states", self.read_states)
        if states is None:
            return False
        names, message = firing_message("blocker", states, self.insufficient_data)
        if not names:
            return True
        if self._timeout_at is not None and datetime.now(UTC) >= self._timeout_at:
            raise AirflowException(
                f"still blocked at the blocker timeout ({self.timeout_seconds}s): {message}"
            )
        return False

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
