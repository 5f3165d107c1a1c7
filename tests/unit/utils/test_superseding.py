"""Superseding: a waiting run gives way to the newest run queued behind it, unless it overrides windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from handsoff.utils.superseding import (
    SUPERSEDED_XCOM,
    WaitingRun,
    newer_waiting_run,
    override_reason,
    skip_superseded,
)
from support.context import TaskInstanceStandIn, task_context

MINE = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def _runs(monkeypatch, details: dict[str, SimpleNamespace]) -> list[str]:
    """The execution API's view of each queued run; returns the run ids it was asked about."""
    asked: list[str] = []

    def dag_run_details(dag_id: str, run_id: str) -> SimpleNamespace:
        asked.append(run_id)
        return details[run_id]

    monkeypatch.setattr("handsoff.utils.superseding.dag_run_details", dag_run_details)
    return asked


def _queued(minutes: int, commit: str | None = None, state: str = "queued") -> SimpleNamespace:
    conf = {"commit": commit} if commit else {}
    return SimpleNamespace(state=state, run_after=MINE + timedelta(minutes=minutes), conf=conf)


def _context(ti: TaskInstanceStandIn, conf: dict | None = None) -> dict:
    return task_context(ti, run_id="merge-mine", conf=conf, run_after=MINE)


def test_with_nothing_queued_one_question_is_enough(monkeypatch):
    asked = _runs(monkeypatch, {})

    assert newer_waiting_run(_context(TaskInstanceStandIn(run_counts={"queued": 0})), "source") is None
    assert asked == []


def test_the_newest_run_queued_after_this_one_wins(monkeypatch):
    states = {
        "merge-mine": {"source": "success"},
        "merge-older": {"source": None},  # queued before this run: it never supersedes it
        "merge-newer": {"source": None},
        "merge-newest": {"source": None},
        "merge-started": {"source": "running"},  # already past its first task: not waiting
    }
    asked = _runs(
        monkeypatch,
        {
            "merge-older": _queued(-5),
            "merge-newer": _queued(5, "a" * 40),
            "merge-newest": _queued(9, "b" * 40),
        },
    )
    ti = TaskInstanceStandIn(run_counts={"queued": 3}, task_states=states)

    newer = newer_waiting_run(_context(ti), "source")

    assert newer == WaitingRun("merge-newest", MINE + timedelta(minutes=9), "b" * 40)
    assert sorted(asked) == ["merge-newer", "merge-newest", "merge-older"]


def test_skipping_says_who_supersedes_and_where_and_keeps_it_on_the_task(monkeypatch):
    ti = TaskInstanceStandIn(task_id="source")
    newer = WaitingRun("merge-newest", MINE, "b" * 40)

    with pytest.raises(AirflowSkipException) as skipped:
        skip_superseded(_context(ti), newer, "source, before building")

    message = (
        f"superseded by merge-newest (commit {'b' * 12}), a newer run waiting to deploy; "
        "this run stops at source, before building"
    )
    assert str(skipped.value) == message
    assert ti.pushed[SUPERSEDED_XCOM] == {"run_id": "merge-newest", "message": message}


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({}, None),
        ({"override_window": "  "}, None),
        ({"override_window": " INC-7: broken "}, "INC-7: broken"),
    ],
)
def test_an_override_reason_counts_only_when_it_says_something(conf, expected):
    assert override_reason(_context(TaskInstanceStandIn(), conf)) == expected
