"""Bake: wait a fixed time after a wave or stage, watching its rollback alarms, holding no worker slot."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from handsoff.links.aws import CloudWatchAlarmsLink
from handsoff.model.durations import format_duration
from handsoff.model.pipeline import DEFAULT_AWS_CONN_ID
from handsoff.sensors.base import AlarmReadingMixin
from handsoff.triggers.alarms import AlarmWatchTrigger
from handsoff.utils.alarms import (
    DONE,
    NO_EVIDENCE,
    check_alarms,
    check_datapoints,
    check_policy,
    evidence_verdict,
    firing_message,
    metric_label,
    no_evidence_message,
)
from handsoff.utils.deferral import deferral_timeout
from handsoff.utils.verdicts import VerdictMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class BakeSensor(VerdictMixin, AlarmReadingMixin, BaseSensorOperator):
    """Succeed once `bake_seconds` have passed since the task started, with no rollback alarm fired.

    Deferrable by default: the wait happens in the triggerer, not a worker slot. Without `alarms` or
    `datapoints` it is a plain timer (DateTimeTrigger). Otherwise AlarmWatchTrigger watches `alarms`
    (region → names) for the whole bake and fails it as soon as one counts as ALARM (INSUFFICIENT_DATA
    too under `insufficient_data="alarm"`). With `datapoints` ({namespace, metric, dimensions, count,
    region?}) the bake also waits until the metric's Sum since the bake started reaches `count`, watching
    alarms meanwhile, and fails at `max_seconds` (default: `bake_seconds`) without it. Fails closed: a
    missing alarm fails it, AWS errors are retried (`aws_retries` attempts with backoff from
    `backoff_seconds`; not the task's `retries`) and then fail it. An alarm or missing evidence fails the
    task without task retries: a retry would start a fresh bake that could pass after the alarm cleared.

    With `pipeline` (and its `store` and the run's `commit`), a failing bake records the verdict at once,
    and a bake of a run whose commit was found bad fails at once: clearing a failed bake in the UI starts
    no fresh bake that could pass now that the rollback has cleared the alarm.

    A bake shorter than `defer_min_seconds` waits in the worker (poking): deferring costs a task restart,
    and Airflow 3.3 can fail a task whose trigger fires before the scheduler has handled its deferral
    (the executor reports the deferred attempt "success" while the resumed one runs).
    """

    defer_min_seconds: ClassVar[int] = 10

    template_fields = ("commit",)
    operator_extra_links = (CloudWatchAlarmsLink(),)
    template_fields_renderers = {"alarms": "json", "datapoints": "json"}
    ui_color = "#fbe9e7"

    def __init__(
        self,
        *,
        bake_seconds: int,
        deferrable: bool = True,
        alarms: dict[str, list[str]] | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        poll_seconds: float = 30,
        insufficient_data: str = "alarm",
        datapoints: dict[str, Any] | None = None,
        max_seconds: int | None = None,
        aws_retries: int = 5,
        backoff_seconds: float = 1.0,
        pipeline: str | None = None,
        store: str | None = None,
        commit: str = "",
        **kwargs: Any,
    ) -> None:
        if alarms is not None:
            check_alarms(alarms)
        check_policy(insufficient_data)
        if datapoints is not None:
            check_datapoints(datapoints, need_since=False)
        if max_seconds is not None and max_seconds < bake_seconds:
            raise ValueError(f"max_seconds {max_seconds} is shorter than bake_seconds {bake_seconds}")
        watching = any((alarms or {}).values()) or datapoints is not None
        longest = max(bake_seconds, max_seconds or 0) if datapoints is not None else bake_seconds
        kwargs.setdefault(
            "poke_interval", poll_seconds if watching else min(60.0, max(1.0, bake_seconds / 10))
        )
        kwargs.setdefault("timeout", deferral_timeout(timedelta(seconds=longest)).total_seconds())
        super().__init__(**kwargs)
        self.bake_seconds = bake_seconds
        self.deferrable = deferrable
        self.alarms = alarms
        self.aws_conn_id = aws_conn_id
        self.poll_seconds = poll_seconds
        self.insufficient_data = insufficient_data
        self.datapoints = datapoints
        self.max_seconds = max_seconds
        self.aws_retries = aws_retries
        self.backoff_seconds = backoff_seconds
        self.pipeline = pipeline
        self.store = store
        self.commit = commit
        self._since: datetime | None = None
        self._until: datetime | None = None
        self._max_until: datetime | None = None

    @property
    def watching(self) -> bool:
        """True when the bake watches alarms or waits for datapoints, not only the clock."""
        return any((self.alarms or {}).values()) or self.datapoints is not None

    @property
    def max_bake_seconds(self) -> int:
        """How long the bake may last waiting for datapoints (`bake_seconds` without them)."""
        return (
            max(self.bake_seconds, self.max_seconds or 0)
            if self.datapoints is not None
            else self.bake_seconds
        )

    def execute(self, context: Context) -> None:
        self.refuse_if_bad(context)
        with self._verdict_on_failure(context):
            self._start(context)

    def _start(self, context: Context) -> None:
        self._since = datetime.now(UTC)
        self._until = self._since + timedelta(seconds=self.bake_seconds)
        self._max_until = self._since + timedelta(seconds=self.max_bake_seconds)
        self.log.info("Baking for %ss, until %s", self.bake_seconds, self._until.isoformat())
        if not self.watching and self.bake_seconds <= 0:
            return
        if self.watching:
            self.log.info("Watching rollback alarms %s; datapoints %s", self.alarms, self.datapoints)
            self.persist_alarms_link(context)
        if not self.deferrable or self.max_bake_seconds < self.defer_min_seconds:
            super().execute(context)
            return
        self.defer(
            trigger=self.watch_trigger() if self.watching else DateTimeTrigger(moment=self._until),
            method_name="execute_complete",
            timeout=deferral_timeout(timedelta(seconds=self.max_bake_seconds)),
        )

    def watch_trigger(self) -> AlarmWatchTrigger:
        """The trigger watching this bake (after `execute` set its deadlines)."""
        if self._since is None or self._until is None or self._max_until is None:
            raise RuntimeError("the bake has not started")
        datapoints = None
        if self.datapoints is not None:
            datapoints = {**self.datapoints, "since": self._since.isoformat()}
        return AlarmWatchTrigger(
            aws_conn_id=self.aws_conn_id,
            alarms=self.alarms or {},
            until=self._until.isoformat(),
            poll_seconds=self.poll_seconds,
            insufficient_data=self.insufficient_data,
            datapoints=datapoints,
            max_until=self._max_until.isoformat() if datapoints else None,
            retries=self.aws_retries,
            backoff_seconds=self.backoff_seconds,
        )

    @contextlib.contextmanager
    def _verdict_on_failure(self, context: Context) -> Iterator[None]:
        """A bake that fails found the change bad: record it before the task fails."""
        try:
            yield
        except AirflowException as err:
            self.found_bad(context, f"bake {self.task_id} failed: {err}")
            raise

    def poke(self, context: Context) -> bool:
        now = datetime.now(UTC)
        if not self.watching:
            return self._until is not None and now >= self._until
        states = self.poke_read("read alarm states", self.read_states)
        if states is None:
            return False
        names, message = firing_message("rollback", states, self.insufficient_data)
        if names:
            raise AirflowFailException(message)
        if self._until is None or now < self._until:
            return False
        if self.datapoints is None:
            return True
        seen = self.poke_read(f"read {metric_label(self.datapoints)}", self._metric_sum)
        if seen is None:
            return False
        max_until = self._max_until or datetime.max.replace(tzinfo=UTC)
        verdict = evidence_verdict(seen, self.datapoints["count"], now, max_until)
        if verdict == NO_EVIDENCE:
            raise AirflowFailException(self._no_evidence(seen))
        return verdict == DONE

    def _metric_sum(self) -> float:
        dp = self.datapoints or {}
        since = self._since or datetime.now(UTC)
        return self.hook(dp.get("region") or "").metric_sum(
            dp["namespace"], dp["metric"], dp.get("dimensions", {}), since, datetime.now(UTC)
        )

    def _no_evidence(self, seen: float) -> str:
        limit = format_duration(timedelta(seconds=self.max_bake_seconds))
        return no_evidence_message(self.datapoints or {}, seen, f"the max bake {limit}")

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Resume after the trigger: return when the bake passed, raise with the reason otherwise."""
        with self._verdict_on_failure(context):
            self._complete(event)

    def _complete(self, event: Any) -> None:
        if not self.watching:
            self.log.info("Bake of %ss complete", self.bake_seconds)
            return
        status = event.get("status") if isinstance(event, dict) else None
        if status == "success":
            self.log.info("Bake of %ss complete: %s", self.bake_seconds, event.get("message", ""))
            return
        if status == "alarm":
            raise AirflowFailException(
                event.get("message") or f"rollback alarm(s) in ALARM: {event.get('alarms')}"
            )
        if status == "no_evidence":
            raise AirflowFailException(self._no_evidence(event.get("seen", 0)))
        if status == "error" and event.get("alarms"):
            raise AirflowFailException(event["message"])
        if status == "error":
            raise AirflowException(event.get("message") or "could not read alarm states")
        raise AirflowException(f"unexpected event from the bake trigger: {event!r}")
