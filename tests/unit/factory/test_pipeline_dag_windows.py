"""What windows and execution modes change in the DAG: the schedule, one gate per windowed wave, params."""

from __future__ import annotations

import json

import pytest
from support.specs import ISSUE_EXAMPLE

WINDOW = {
    "timezone": "America/Los_Angeles",
    "allow": [{"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
}


def build(tmp_path, **changes):
    from handsoff.factory.pipeline_dag import build_dag
    from handsoff.spec import load_pipeline

    spec = json.loads(json.dumps(ISSUE_EXAMPLE))
    for change in changes.values():
        change(spec)
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "service.json").write_text("{}")
    (tmp_path / "orders-api.json").write_text(json.dumps(spec))
    return build_dag(load_pipeline(tmp_path / "orders-api.json", tmp_path))


def windowed(spec: dict) -> None:
    spec["windows"] = {"business-hours": WINDOW}
    spec["schedule"] = {"window": "business-hours"}
    spec["stages"][3]["window"] = "business-hours"
    spec["stages"][3]["waves"][1]["alarms"] = {"blockers": ["orders-aggregate"]}


@pytest.mark.parametrize("mode", ["superseded", "queued"])
def test_each_wave_of_a_windowed_stage_starts_with_its_gate(tmp_path, mode):
    dag = build(tmp_path, windowed=windowed, mode=lambda spec: spec.update(execution={"mode": mode}))

    gates = {t.task_id: t for t in dag.tasks if t.task_id.endswith(".window")}
    assert sorted(gates) == ["prod.first-region.window", "prod.onebox.window", "prod.rest.window"]
    assert {(g.window_name, g.execution_mode, g.deferrable) for g in gates.values()} == {
        ("business-hours", mode, True)
    }
    assert dag.get_task("gamma.bake").downstream_task_ids >= {"prod.onebox.window"}
    assert "prod.onebox.deploy_use1-onebox" in gates["prod.onebox.window"].downstream_task_ids
    # before the blockers, which come before the deploys
    assert "prod.first-region.blockers" in gates["prod.first-region.window"].downstream_task_ids
    assert gates["prod.first-region.window"].upstream_task_ids == {"prod.onebox.bake"}
    assert {"rollback_plan", "outcome"} <= gates[
        "prod.rest.window"
    ].downstream_task_ids  # watched like the rest
    assert dag.max_active_runs == 1  # one run deploys at a time, in either mode
    assert dag.get_task("source").execution_mode == mode
    assert dag.get_task("source").last_wave == ["usw2", "euw1"]


def test_the_schedule_and_the_override_param(tmp_path):
    from handsoff.timetables.window import DeploymentWindowTimetable

    dag = build(tmp_path, windowed=windowed)

    assert isinstance(dag.timetable, DeploymentWindowTimetable)
    assert dag.timetable.summary == "window business-hours (America/Los_Angeles)"
    assert dag.catchup is False
    assert "override_window" in dag.params
    assert "- **Window `business-hours`:** mon-thu 09:00-16:00 America/Los_Angeles" in dag.doc_md


def test_without_windows_nothing_changes(tmp_path):
    dag = build(tmp_path)

    assert not [t for t in dag.tasks if t.task_id.endswith(".window")]
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: triggered runs only
    assert list(dag.params) == ["commit"]
