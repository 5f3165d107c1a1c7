"""`handsoff windows SPEC [--at ISO-TIME] [--next N]`: each deployment window's state and next openings.

Uses the same loader as the DAGs and the same ``DeploymentWindow`` as the gate and the timetable, so
what it prints is what the pipeline does.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from handsoff.cli.registry import UsageError
from handsoff.model.durations import format_duration
from handsoff.model.pipeline import Pipeline
from handsoff.model.windows import DeploymentWindow
from handsoff.spec import SpecErrors, load_pipeline
from handsoff.spec.files import specs_root_for


def windows(args: argparse.Namespace) -> int:
    """Print the windows, or the spec's issues (exit 1)."""
    if not args.spec.is_file():
        raise UsageError(f"no such file: {args.spec}")
    at = _parse_time(args.at)
    try:
        pipeline = load_pipeline(args.spec, specs_root_for(args.spec))
    except SpecErrors as exc:
        for issue in exc.issues:
            print(issue)
        return 1
    print("\n".join(window_report(pipeline, at, args.count)))
    return 0


def window_report(pipeline: Pipeline, at: datetime | None, count: int) -> list[str]:
    """The lines `handsoff windows` prints for `pipeline` at `at` (naive: each window's zone; None: now)."""
    schedule = pipeline.schedule_window.name if pipeline.schedule_window else "none (triggered runs only)"
    lines = [
        f"{pipeline.id}: {len(pipeline.windows)} window(s); schedule: {schedule}; "
        f"execution: {pipeline.execution_mode}"
    ]
    for name, window in pipeline.windows.items():
        moment = _in_zone(at, window)
        lines += [
            f"{name}: {window.summary()}",
            f"  used by: {', '.join(_users(pipeline, name)) or 'none'}",
            f"  at {moment.astimezone(window.zone):%a %Y-%m-%d %H:%M %Z}: {window.state(moment)}",
        ]
        if count:
            lines.append(f"  next {count} opening(s):")
            lines += [f"    {line}" for line in _openings(window, moment, count)]
    return lines


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return datetime.now(UTC)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r} is not an ISO time like 2026-11-26T12:00:00-08:00") from None


def _in_zone(at: datetime | None, window: DeploymentWindow) -> datetime:
    """`at`, read in the window's zone when naive (its first occurrence when ambiguous)."""
    moment = at or datetime.now(UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=window.zone)


def _users(pipeline: Pipeline, name: str) -> list[str]:
    """What uses the window: the schedule, and the waves (stage.wave) that wait for it."""
    users = ["schedule"] if pipeline.schedule_window and pipeline.schedule_window.name == name else []
    return users + [
        f"{stage.name}.{wave.name}"
        for stage in pipeline.stages
        for wave in stage.waves
        if wave.window is not None and wave.window.name == name
    ]


def _openings(window: DeploymentWindow, moment: datetime, count: int) -> list[str]:
    try:
        found = window.openings(moment, count)
    except ValueError as error:
        return [str(error)]
    lines = []
    for start, end in found:
        until = f"{end:%H:%M %Z}" if end.date() == start.date() else f"{end:%a %Y-%m-%d %H:%M %Z}"
        lines.append(f"{start:%a %Y-%m-%d %H:%M %Z} – {until}  ({_length(end - start)})")
    return lines


def _length(delta: timedelta) -> str:
    """A duration in days, hours and minutes: "7h", "1d2h30m"."""
    return format_duration(timedelta(minutes=delta // timedelta(minutes=1)), zero="0m")
