"""What the alarm-reading sensors (bake, blocker) share: synchronous reads of CloudWatch with retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from botocore.exceptions import BotoCoreError, ClientError

from handsoff.hooks.cloudwatch import AlarmsNotFound, CloudWatchAlarmHook, is_retryable
from handsoff.links.aws import CloudWatchAlarmsLink

if TYPE_CHECKING:
    from airflow.sdk import Context

T = TypeVar("T")


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
