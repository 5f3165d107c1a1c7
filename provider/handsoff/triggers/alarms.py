"""Triggers that watch CloudWatch alarms from the triggerer: the bake watch and the blocker wait.

Both fail closed: a missing alarm is an error, AWS errors are retried with a bounded exponential backoff
and then fail, and nothing passes on an unknown state. Every deadline is an absolute ISO timestamp, so a
trigger re-run after a triggerer restart continues where it was. Each run yields exactly one event.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.exceptions import BotoCoreError, ClientError

from handsoff.hooks.cloudwatch import AlarmsNotFound, CloudWatchAlarmHook, backoff_delay, is_retryable
from handsoff.utils.alarms import (
    BLOCKED,
    CLEAR,
    DONE,
    NO_EVIDENCE,
    blocker_verdict,
    check_alarms,
    check_datapoints,
    check_policy,
    evidence_verdict,
    firing_message,
    metric_label,
    no_evidence_message,
    parse_deadline,
)

T = TypeVar("T")


class ReadFailed(Exception):
    """AWS could not be read: the retries ran out, or the error was not one that passes by waiting."""


class CloudWatchAlarmTrigger(BaseTrigger):
    """Base of the alarm triggers: serialization, per-region clients, reading every alarm with retries.

    A subclass only configures it: keyword-only `__init__` arguments stored under the same names (which
    `serialize()` returns, with the classpath: all JSON-simple) and `watch()`, which returns the one event.
    `run()` opens one aiobotocore client per region for the run, calls `watch()`, closes them and yields
    the event; a missing alarm or a read that failed past its retries becomes an "error" event.
    """

    kind = "alarm"  # how messages name the watched alarms

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        loose = [
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind is not inspect.Parameter.KEYWORD_ONLY
        ]
        if loose:
            raise TypeError(f"{cls.__name__}.__init__ must take keyword-only arguments (serialize): {loose}")
        if cls.watch is CloudWatchAlarmTrigger.watch:
            raise TypeError(f"{cls.__name__} must define watch()")

    def __init__(
        self,
        *,
        aws_conn_id: str | None,
        alarms: Mapping[str, list[str]],
        poll_seconds: float,
        insufficient_data: str,
        retries: int,
        backoff_seconds: float,
        backoff_cap: float,
    ) -> None:
        super().__init__()
        check_alarms(alarms)
        check_policy(insufficient_data)
        if poll_seconds <= 0 or retries < 1 or backoff_seconds < 0 or backoff_cap < 0:
            raise ValueError("poll_seconds must be > 0, retries >= 1, backoff_seconds and backoff_cap >= 0")
        self.aws_conn_id = aws_conn_id
        self.alarms = {region: list(names) for region, names in alarms.items()}
        self.poll_seconds = poll_seconds
        self.insufficient_data = insufficient_data
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.backoff_cap = backoff_cap
        self._hooks: dict[str, CloudWatchAlarmHook] = {}
        self._clients: dict[str, Any] = {}
        self._stack: contextlib.AsyncExitStack | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        names = [name for name in inspect.signature(type(self).__init__).parameters if name != "self"]
        return f"{type(self).__module__}.{type(self).__qualname__}", {n: getattr(self, n) for n in names}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with contextlib.AsyncExitStack() as self._stack:
            try:
                event = await self.watch()
            except AlarmsNotFound as err:
                event = TriggerEvent({"status": "error", "alarms": err.names, "message": str(err)})
            except ReadFailed as err:
                event = TriggerEvent({"status": "error", "message": str(err)})
            finally:
                self._clients.clear()
        self._stack = None
        yield event

    async def watch(self) -> TriggerEvent:
        """Poll until the outcome is known; return the event (may raise AlarmsNotFound, ReadFailed)."""
        raise NotImplementedError

    def hook(self, region: str) -> CloudWatchAlarmHook:
        """The hook of `region` ("" → the connection's region), kept for the run so its calls add up."""
        if region not in self._hooks:
            self._hooks[region] = CloudWatchAlarmHook(
                aws_conn_id=self.aws_conn_id, region_name=region or None
            )
        return self._hooks[region]

    async def client(self, region: str) -> Any:
        """The aiobotocore client of `region`, opened once per run (connections are reused across polls)."""
        if region not in self._clients:
            if self._stack is None:
                raise RuntimeError("clients exist only while the trigger runs")
            conn = await self.hook(region).get_async_conn()
            self._clients[region] = await self._stack.enter_async_context(conn)
        return self._clients[region]

    def calls(self, kind: str) -> int:
        """API calls of this run, "describe" or "metric" (failed attempts included)."""
        return sum(getattr(hook, f"{kind}_calls") for hook in self._hooks.values())

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Await `call()`, retrying errors that may pass with exponential backoff; ReadFailed at the end."""
        for attempt in range(1, self.retries + 1):
            try:
                return await call()
            except (BotoCoreError, ClientError) as err:
                if not is_retryable(err):
                    raise ReadFailed(f"could not {what}: {err}") from err
                if attempt == self.retries:
                    raise ReadFailed(f"could not {what} after {attempt} attempts: {err}") from err
                delay = backoff_delay(attempt, self.backoff_seconds, self.backoff_cap)
                self.log.warning(
                    "Could not %s (attempt %d/%d): %s; retry in %.1fs",
                    what,
                    attempt,
                    self.retries,
                    err,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def read_states(self) -> dict[str, dict[str, str]]:
        """Region → {alarm name: state} of every watched alarm, all regions at once, with retries."""

        async def read(region: str) -> dict[str, str]:
            return await self.hook(region).alarm_states_async(self.alarms[region], await self.client(region))

        async def read_all() -> dict[str, dict[str, str]]:
            regions = [region for region, names in self.alarms.items() if names]
            results = await asyncio.gather(*(read(region) for region in regions), return_exceptions=True)
            missing = [r for r in results if isinstance(r, AlarmsNotFound)]
            if missing:
                where = ", ".join(err.region or "default" for err in missing)
                raise AlarmsNotFound([name for err in missing for name in err.names], where)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return dict(zip(regions, results, strict=True))

        return await self.retrying("read alarm states", read_all)

    def firing_event(
        self, states: dict[str, dict[str, str]], status: str, lead: str = ""
    ) -> TriggerEvent | None:
        """The event naming every alarm that counts as ALARM under the policy, or None if none does."""
        names, message = firing_message(self.kind, states, self.insufficient_data)
        return TriggerEvent({"status": status, "alarms": names, "message": lead + message}) if names else None

    async def sleep_until_next_poll(self, poll_started: datetime, deadline: datetime) -> None:
        """Sleep until one poll interval after the last poll started, or until `deadline` if sooner."""
        wake = min(poll_started + timedelta(seconds=self.poll_seconds), deadline)
        await asyncio.sleep(max(0.0, (wake - datetime.now(UTC)).total_seconds()))


class AlarmWatchTrigger(CloudWatchAlarmTrigger):
    """Watch rollback alarms until `until`; with `datapoints`, also wait (to `max_until`) for evidence.

    Events: success {polls, describe_calls, metric_calls, alarms_watched, datapoints_seen, message};
    alarm {alarms, message} as soon as one counts as ALARM; error {message[, alarms]} for missing alarms
    or exhausted retries; no_evidence {metric, dimensions, seen, count, message} when the metric's Sum
    since `datapoints.since` is below `count` at `max_until` (default: `until`).
    """

    kind = "rollback"

    def __init__(
        self,
        *,
        aws_conn_id: str | None,
        alarms: Mapping[str, list[str]],
        until: str,
        poll_seconds: float,
        insufficient_data: str,
        datapoints: dict[str, Any] | None = None,
        max_until: str | None = None,
        retries: int = 5,
        backoff_seconds: float = 1.0,
        backoff_cap: float = 30.0,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id,
            alarms=alarms,
            poll_seconds=poll_seconds,
            insufficient_data=insufficient_data,
            retries=retries,
            backoff_seconds=backoff_seconds,
            backoff_cap=backoff_cap,
        )
        if datapoints is not None:
            check_datapoints(datapoints, need_since=True)
        self.until = until
        self.datapoints = datapoints
        self.max_until = max_until
        self._until = parse_deadline(until, "until")
        self._max_until = parse_deadline(max_until, "max_until") if max_until else self._until
        if self._max_until < self._until:
            raise ValueError(f"max_until {max_until} is before until {until}")

    async def watch(self) -> TriggerEvent:
        polls, seen = 0, None
        while True:
            started = datetime.now(UTC)
            states = await self.read_states()
            polls += 1
            event = self.firing_event(states, "alarm")
            if event is not None:
                return event
            now = datetime.now(UTC)
            if now >= self._until:
                if self.datapoints is None:
                    break
                seen = await self.retrying(f"read {metric_label(self.datapoints)}", self._metric_sum)
                verdict = evidence_verdict(seen, self.datapoints["count"], now, self._max_until)
                if verdict == DONE:
                    break
                if verdict == NO_EVIDENCE:
                    return self._no_evidence(seen)
                self.log.info(
                    "%s sum %g < %g: waiting", metric_label(self.datapoints), seen, self.datapoints["count"]
                )
            await self.sleep_until_next_poll(started, self._until if now < self._until else self._max_until)
        watched = sum(len(names) for names in self.alarms.values())
        return TriggerEvent(
            {
                "status": "success",
                "polls": polls,
                "describe_calls": self.calls("describe"),
                "metric_calls": self.calls("metric"),
                "alarms_watched": watched,
                "datapoints_seen": seen,
                "message": f"no rollback alarm fired: {watched} alarm(s), {polls} poll(s)",
            }
        )

    async def _metric_sum(self) -> float:
        dp = self.datapoints or {}
        region = dp.get("region") or ""
        since = parse_deadline(dp["since"], "datapoints.since")
        args = (dp["namespace"], dp["metric"], dp.get("dimensions", {}), since, datetime.now(UTC))
        return await self.hook(region).metric_sum_async(*args, client=await self.client(region))

    def _no_evidence(self, seen: float) -> TriggerEvent:
        dp = self.datapoints or {}
        message = no_evidence_message(dp, seen, self._max_until.isoformat())
        return TriggerEvent(
            {
                "status": "no_evidence",
                "metric": metric_label(dp),
                "dimensions": dict(dp.get("dimensions", {})),
                "seen": seen,
                "count": dp["count"],
                "message": message,
            }
        )


class BlockerTrigger(CloudWatchAlarmTrigger):
    """Wait while any blocker alarm counts as ALARM, until `timeout_at`.

    Events: clear {polls, describe_calls, message} as soon as none does; blocked {alarms, message} at
    `timeout_at`; error {message[, alarms]} for missing alarms or exhausted retries.
    """

    kind = "blocker"

    def __init__(
        self,
        *,
        aws_conn_id: str | None,
        alarms: Mapping[str, list[str]],
        timeout_at: str,
        poll_seconds: float,
        insufficient_data: str,
        retries: int = 5,
        backoff_seconds: float = 1.0,
        backoff_cap: float = 30.0,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id,
            alarms=alarms,
            poll_seconds=poll_seconds,
            insufficient_data=insufficient_data,
            retries=retries,
            backoff_seconds=backoff_seconds,
            backoff_cap=backoff_cap,
        )
        self.timeout_at = timeout_at
        self._timeout_at = parse_deadline(timeout_at, "timeout_at")

    async def watch(self) -> TriggerEvent:
        polls, blocked_by = 0, None
        lead = f"still blocked at the blocker timeout {self.timeout_at}: "
        while True:
            started = datetime.now(UTC)
            states = await self.read_states()
            polls += 1
            verdict = blocker_verdict(states, self.insufficient_data, datetime.now(UTC), self._timeout_at)
            if verdict.outcome == CLEAR:
                break
            if verdict.outcome == BLOCKED:
                return TriggerEvent(
                    {"status": "blocked", "alarms": verdict.alarms, "message": lead + verdict.message}
                )
            if verdict.alarms != blocked_by:
                blocked_by = verdict.alarms
                self.log.info("Blocked by %s", ", ".join(blocked_by))
            await self.sleep_until_next_poll(started, self._timeout_at)
        message = f"no blocker alarm in ALARM after {polls} poll(s)"
        return TriggerEvent(
            {"status": "clear", "polls": polls, "describe_calls": self.calls("describe"), "message": message}
        )
