"""Rollback rules: which waves roll back (newest first, for the earliest failure) and what each target
goes back to, automatically and on demand."""

from __future__ import annotations

import pytest
from handsoff.model.records import LedgerEntry, TargetRecord
from handsoff.model.rollback import (
    RollbackRefused,
    RollbackRequestError,
    automatic_restore,
    earlier_version,
    failed_tasks,
    plan_rollback,
    requested_restore,
    restore_problem,
)

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


def _entry(commit: str, run: str, action: str = "deploy", **detail) -> LedgerEntry:
    return LedgerEntry(commit=commit, run_id=run, time="2026-12-07T10:00:00", action=action, detail=detail)


def _record(*entries: LedgerEntry) -> TargetRecord:
    record = TargetRecord("t1")
    for entry in entries:
        record = record.rolled_back(entry) if entry.action == "rollback" else record.deployed(entry)
    return record


def test_a_target_this_run_deployed_goes_back_to_its_previous_version():
    record = _record(_entry("aaa", "r1"), _entry("bbb", "r2"))

    decision = automatic_restore(record, "r2", deploy_failed=False)

    assert decision.change and decision.to.commit == "aaa"


def test_on_a_first_deploy_the_deployers_before_is_the_earlier_version():
    before = {"function": "orders", "version": "1"}
    record = _record(_entry("aaa", "r1", before=before))

    decision = automatic_restore(record, "r1", deploy_failed=False)

    assert decision.to.detail == before and decision.to.note == "as before handsoff's first deploy"
    assert earlier_version(record) == decision.to


def test_a_first_deploy_with_nothing_known_before_is_refused_never_removed():
    record = _record(_entry("aaa", "r1"))  # a deployer that could not say what ran there

    with pytest.raises(RollbackRefused, match="what ran before is unknown .* not removing what handsoff did"):
        automatic_restore(record, "r1", deploy_failed=False)
    with pytest.raises(RollbackRefused, match="its failed first deploy left"):
        automatic_restore(TargetRecord("t1"), "r2", deploy_failed=True, mark_before=None)


@pytest.mark.parametrize(
    ("record", "deploy_failed", "mark_before", "change", "to"),
    [
        (_record(_entry("aaa", "r1")), False, None, False, None),  # not changed by this run
        (_record(_entry("aaa", "r1")), True, None, True, "aaa"),  # failed part-way: put back what runs
        (TargetRecord("t1"), True, {"absent": True}, True, ""),  # first deploy failed: back to what ran
        (
            _record(_entry("aaa", "r0"), _entry("bbb", "r2"), _entry("aaa", "r2", "rollback")),
            False,
            None,
            False,
            None,
        ),
    ],
)
def test_what_the_automatic_rollback_does_to_a_target(record, deploy_failed, mark_before, change, to):
    decision = automatic_restore(record, "r2", deploy_failed, mark_before)

    assert decision.change is change
    assert (decision.to.commit if decision.to else None) == to


def test_a_rollback_past_handsoffs_first_deploy_records_what_runs_then():
    before = {"function": "orders", "version": "1"}
    record = _record(_entry("aaa", "r1", before=before))
    back = LedgerEntry(commit="", run_id="r1", time="t", action="rollback", detail=before)
    nothing = LedgerEntry(commit="", run_id="r1", time="t", action="rollback", detail={"absent": True})

    assert record.rolled_back(back).current == back  # it runs version 1 again, not "nothing"
    assert record.rolled_back(nothing).current is None


def test_a_restore_problem_is_named_before_a_rollback_is_asked_for():
    command = {"deploy": {"type": "command"}}
    good = LedgerEntry(commit="aaa", run_id="r1", time="t", config=command)
    record = (
        TargetRecord("t1")
        .deployed(good)
        .deployed(LedgerEntry(commit="bbb", run_id="r2", time="t", config=command))
    )

    assert restore_problem(record, lambda commit: True) is None
    assert "the artifact of aaa, its earlier version, is gone" in restore_problem(
        record, lambda commit: False
    )
    assert "unknown" in restore_problem(TargetRecord("t1").deployed(good), lambda commit: True)
    assert restore_problem(TargetRecord("t1"), lambda commit: False) is None


def test_an_on_demand_rollback_goes_back_to_the_previous_version_or_a_named_one():
    record = _record(_entry("aaa1", "r1"), _entry("bbb2", "r2"), _entry("ccc3", "r3"))

    assert requested_restore(record, None, "rb").to.commit == "bbb2"
    assert requested_restore(record, "aaa", "rb").to.commit == "aaa1"
    assert not requested_restore(record, "ccc", "rb").change  # already runs it
    assert not requested_restore(TargetRecord("t2"), None, "rb").change  # nothing runs there
    with pytest.raises(RollbackRequestError, match="commit ddd was never deployed to target t1"):
        requested_restore(record, "ddd", "rb")
    with pytest.raises(RollbackRequestError, match="has no earlier version"):
        requested_restore(_record(_entry("aaa1", "r1")), None, "rb")
