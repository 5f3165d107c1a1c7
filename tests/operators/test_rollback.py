"""The rollback plan: which waves roll back, newest first, for the earliest failure."""

from __future__ import annotations

import pytest
from handsoff.operators.rollback import failed_tasks, plan_rollback

WAVES = [
    {"stage": "alpha", "wave": "alpha", "failure_tasks": ["alpha.alpha.deploy_a"]},
    {"stage": "prod", "wave": "onebox", "failure_tasks": ["prod.onebox.deploy_o", "prod.onebox.bake"]},
    {"stage": "prod", "wave": "region", "failure_tasks": ["prod.region.deploy_r1", "prod.region.deploy_r2"]},
    {"stage": "prod", "wave": "rest", "failure_tasks": ["prod.rest.deploy_x", "prod.rest.bake"]},
]
STAGES = {"alpha": ["alpha.test_integration"], "prod": ["prod.bake"]}


@pytest.mark.parametrize(
    ("scope", "failed", "expected"),
    [
        ("all", set(), []),
        ("all", {"build"}, []),
        ("all", {"prod.region.blockers"}, []),  # a blocker stops the run; the change was not proven bad
        ("wave", {"prod.onebox.bake"}, [1]),
        ("all", {"prod.onebox.bake"}, [1, 0]),
        ("wave", {"prod.region.deploy_r2"}, [2]),
        ("all", {"prod.region.deploy_r2"}, [2, 1, 0]),
        ("wave", {"alpha.test_integration"}, [0]),
        ("wave", {"prod.bake"}, [3, 2, 1]),  # a stage-level failure rolls back the stage's waves
        ("all", {"prod.bake"}, [3, 2, 1, 0]),
        ("wave", {"prod.rest.bake", "prod.onebox.bake"}, [1]),  # the earliest failure decides
    ],
)
def test_plan(scope: str, failed: set[str], expected: list[int]):
    assert plan_rollback(scope, WAVES, STAGES, failed) == expected


def test_mapped_task_states_fold_into_their_task():
    states = {"alpha.test_integration_2": "failed", "alpha.test_integration_0": "success", "build": "success"}
    assert "alpha.test_integration" in failed_tasks(states)
    assert "build" not in failed_tasks(states)
