"""A timetable that starts a run at each opening of a deployment window (``schedule.window``).

Runs are exact (data interval = run_after = the opening). An opening is the first instant of an open
interval of the window (``handsoff.windows``), so a window that stays open across midnight opens once.
Without catchup the next run is at the opening of the interval open now (a run missed while the
scheduler was down starts late, but only while the window is still open), else at the next opening.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.exceptions import AirflowTimetableInvalid
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from handsoff.model.windows import HORIZON_DAYS, DeploymentWindow

_DAY = timedelta(days=1)


class DeploymentWindowTimetable(Timetable):
    """Schedule: one run at each opening of `window` (a window spec, as in the pipeline spec) named `name`."""

    def __init__(self, window: dict[str, Any], name: str) -> None:
        self.name = name
        self.window_spec = window
        try:
            self.window: DeploymentWindow | None = DeploymentWindow.from_spec(window, name)
            self._invalid = ""
        except ValueError as error:
            self.window, self._invalid = None, str(error)
        zone = window.get("timezone", "?") if isinstance(window, dict) else "?"
        self.description = (
            f"At each opening of deployment window {name}: {self.window.summary()}"
            if self.window
            else f"Invalid deployment window {name}: {self._invalid}"
        )
        self._summary = f"window {name} ({zone})"

    @property
    def summary(self) -> str:
        return self._summary

    def validate(self) -> None:
        if self._invalid:
            raise AirflowTimetableInvalid(self._invalid)

    def serialize(self) -> dict[str, Any]:
        return {"name": self.name, "window": self.window_spec}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(data["window"], data["name"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeploymentWindowTimetable):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((self.name, json.dumps(self.window_spec, sort_keys=True)))

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        return DataInterval.exact(pendulum.instance(run_after))

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if self.window is None:
            return None
        candidates = []
        if last_automated_data_interval is not None:
            candidates.append(opening_after(self.window, last_automated_data_interval.end))
        elif restriction.earliest is not None:
            candidates.append(opening_from(self.window, restriction.earliest))
        if not restriction.catchup:
            candidates.append(current_or_next_opening(self.window, datetime.now(UTC)))
        if not candidates or None in candidates:
            return None
        opening = max(candidates)
        if restriction.latest is not None and opening > restriction.latest:
            return None
        return DagRunInfo.exact(pendulum.instance(opening.astimezone(UTC)))


def opening_after(window: DeploymentWindow, dt: datetime) -> datetime | None:
    """The first opening strictly after `dt` (None: none within the search horizon)."""
    try:
        return window.next_open(window.next_close(dt) if window.is_open(dt) else dt)
    except ValueError:
        return None


def opening_from(window: DeploymentWindow, dt: datetime) -> datetime | None:
    """The first opening at or after `dt`."""
    current = current_opening(window, dt)
    return dt if current == dt else opening_after(window, dt)


def current_or_next_opening(window: DeploymentWindow, dt: datetime) -> datetime | None:
    """The opening of the interval open at `dt`, else the next opening."""
    return current_opening(window, dt) or opening_after(window, dt)


def current_opening(window: DeploymentWindow, dt: datetime) -> datetime | None:
    """When the interval open at `dt` opened (None when closed at `dt`, or open for the whole horizon).

    Steps back a day at a time to a closed instant, then walks the openings forward to `dt`.
    """
    if not window.is_open(dt):
        return None
    back = dt
    for _ in range(HORIZON_DAYS):
        back -= _DAY
        if not window.is_open(back):
            return _opening_containing(window, window.next_open(back), dt)
    return None


def _opening_containing(window: DeploymentWindow, opening: datetime, dt: datetime) -> datetime | None:
    """Walk the openings from `opening` to the one whose interval contains `dt` (open at `dt`)."""
    while True:
        try:
            close = window.next_close(opening)
        except ValueError:  # open beyond the search horizon: this interval contains `dt`
            return opening
        if close > dt:
            return opening
        try:
            opening = window.next_open(close)
        except ValueError:
            return None
