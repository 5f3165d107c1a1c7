"""The window gate: a wave starts only while its deployment window lets it start.

When the window is closed (or open for less than its ``min_remaining``), the run waits deferred, holding no
worker slot, until the window next lets a wave start, then checks again: it never deploys outside the
window. In ``superseded`` mode a run that has to wait gives way (ends skipped, "superseded by <run id>")
to a newer run queued behind it: checked when it arrives at the closed gate, every ``recheck_seconds``
while it waits, and when it wakes up, before the window is looked at. A run that finds the window open
goes on (so that frequent merges cannot starve the pipeline). The run conf
``{"override_window": "<reason>"}`` passes the gate at once; the reason is logged and kept as the task's
XCom ``window_override``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from handsoff.model.windows import HORIZON_DAYS, DeploymentWindow
from handsoff.utils.deferral import deferral_timeout
from handsoff.utils.superseding import OVERRIDE_XCOM, newer_waiting_run, override_reason, skip_superseded

if TYPE_CHECKING:
    from airflow.sdk import Context

#: superseded mode: how often a run waiting for its window looks for a newer run queued behind it
RECHECK = timedelta(minutes=10)
_MAX_INTERVALS = 10_000  # open intervals tried by next_start before giving up


def next_start(window: DeploymentWindow, dt: datetime) -> datetime:
    """The first instant at or after `dt` at which the window lets a wave start (``can_start``).

    Skips open intervals shorter than ``min_remaining``; raises ValueError when there is none within the
    window's search horizon.
    """
    moment = dt
    for _ in range(_MAX_INTERVALS):
        moment = window.next_open(moment)
        if window.can_start(moment):
            return moment
        moment = window.next_close(moment)
    raise ValueError(f"window {window.name!r}: no start found in {_MAX_INTERVALS} open intervals after {dt}")


class DeploymentWindowSensor(BaseSensorOperator):
    """Let the wave start when `window` (a window spec named `window_name`) allows it; else wait deferred.

    `execution_mode` "superseded": a run that waits gives way to a newer queued run (checked when the
    gate finds the window closed, every `recheck_seconds` and on waking); "queued": runs go in order.
    A run is waiting when its `first_task` (the pipeline's first task) has not started.
    """

    template_fields = ()
    ui_color = "#fff3cd"

    def __init__(
        self,
        *,
        window: dict[str, Any],
        window_name: str,
        first_task: str,
        execution_mode: str = "superseded",
        recheck_seconds: float = RECHECK.total_seconds(),
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 60.0)
        kwargs.setdefault("timeout", timedelta(days=HORIZON_DAYS).total_seconds())
        super().__init__(**kwargs)
        self.window = window
        self.window_name = window_name
        self.first_task = first_task
        self.execution_mode = execution_mode
        self.recheck_seconds = recheck_seconds
        self.deferrable = deferrable

    @cached_property
    def deployment_window(self) -> DeploymentWindow:
        """The parsed window."""
        return DeploymentWindow.from_spec(self.window, self.window_name)

    def execute(self, context: Context) -> None:
        wake = self.check(context, waited=False)
        if wake is None:
            return
        if not self.deferrable:
            super().execute(context)  # the poke loop: `poke` checks again
            return
        self._defer(wake)

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Resume after the wait: give way to a newer run, or start the wave when the window allows it."""
        wake = self.check(context, waited=True)
        if wake is not None:
            self._defer(wake)

    def poke(self, context: Context) -> bool:
        return self.check(context, waited=True) is None

    def check(self, context: Context, waited: bool) -> datetime | None:
        """None when the wave may start now; else when to check again. Raises skip when superseded.

        `waited`: the run has been waiting at this gate (a newer run then goes first even if it is open).
        """
        now = datetime.now(UTC)
        window, name = self.deployment_window, self.window_name
        reason = override_reason(context)
        if reason:
            state = window.state(now)
            self.log.warning("Deployment window %s overridden (it is %s): %s", name, state, reason)
            record = {"window": name, "reason": reason, "state": state, "at": now.isoformat()}
            context["ti"].xcom_push(key=OVERRIDE_XCOM, value=record)
            return None
        superseding = self.execution_mode == "superseded"
        can_start = window.can_start(now)
        if (
            superseding
            and (waited or not can_start)
            and (newer := newer_waiting_run(context, self.first_task))
        ):
            skip_superseded(context, newer, f"{self.task_id} (window {name} {window.state(now)})")
        if can_start:
            self.log.info("Deployment window %s is %s: the wave starts", name, window.state(now))
            return None
        try:
            start = next_start(window, now)
        except ValueError as error:
            raise AirflowFailException(f"the wave can never start: {error}") from error
        wake = min(start, now + timedelta(seconds=self.recheck_seconds)) if superseding else start
        self.log.info(
            "Deployment window %s is %s; the wave can start at %s; waiting until %s",
            name,
            window.state(now),
            start.isoformat(),
            wake.isoformat(),
        )
        return wake

    def _defer(self, wake: datetime) -> None:
        wait = max(wake - datetime.now(UTC), timedelta(0))
        self.defer(
            trigger=DateTimeTrigger(moment=wake.astimezone(UTC)),
            method_name="execute_complete",
            timeout=deferral_timeout(wait),
        )
