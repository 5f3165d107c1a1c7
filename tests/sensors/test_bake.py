"""The bake sensor defers to the triggerer for exactly its duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.exceptions import TaskDeferred
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from handsoff.sensors.bake import BakeSensor


def test_defers_until_the_bake_ends():
    sensor = BakeSensor(task_id="bake", bake_seconds=3600)
    before = datetime.now(UTC)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert before + timedelta(hours=1) <= trigger.moment <= datetime.now(UTC) + timedelta(hours=1)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("DateTimeTrigger") and kwargs["moment"] == trigger.moment


def test_zero_bake_does_not_defer():
    assert BakeSensor(task_id="bake", bake_seconds=0).execute({}) is None


def test_poke_mode_waits_in_the_worker():
    sensor = BakeSensor(task_id="bake", bake_seconds=1, deferrable=False, poke_interval=0.2)
    start = datetime.now(UTC)
    sensor.execute({})
    assert datetime.now(UTC) - start >= timedelta(seconds=1)
