"""The automatic rollback of one wave on its own, after a deploy that failed part-way.

A real git repository and artifact store on disk; the command deployer writes the target's folder and
the rollback command logs what it was asked to undo and to restore.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from handsoff.operators.deploy import DeployTargetOperator
from handsoff.operators.rollback import RollbackWaveOperator
from handsoff.store.ledger import Ledger
from handsoff.store.objects import object_store
from support.context import TaskInstanceStandIn, task_context

DEPLOY = 'echo "$HANDSOFF_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"'
FAIL_HALFWAY = 'echo "$HANDSOFF_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"; exit 3'
ROLLBACK = (
    'echo "undo $HANDSOFF_COMMIT restore $HANDSOFF_PREVIOUS_COMMIT in $(git rev-parse HEAD)"'
    ' >> "$HANDSOFF_TARGET_DIR/rollbacks.log";'
    ' echo "$HANDSOFF_PREVIOUS_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"'
)
DEPLOY_TASK = "prod.one.deploy_t1"


def _where(store: str, repo, commit: str) -> dict:
    """The arguments the factory gives every task of this wave."""
    return {
        "pipeline": "app",
        "repo": str(repo.bare),
        "commit": commit,
        "store": store,
        "stage": "prod",
        "wave": "one",
    }


def _deploy(store: str, repo, target: Path, commit: str, command: str) -> DeployTargetOperator:
    return DeployTargetOperator(
        task_id=DEPLOY_TASK,
        **_where(store, repo, commit),
        target={"name": "t1", "dir": str(target)},
        deploy={"type": "command", "deploy": command, "rollback": ROLLBACK},
    )


def _rollback(store: str, repo, target: Path, commit: str) -> RollbackWaveOperator:
    plan = {
        "scope": "wave",
        "waves": [
            {
                "stage": "prod",
                "wave": "one",
                "rollback_task": "rollback.prod.one",
                "failure_tasks": [DEPLOY_TASK],
            }
        ],
        "stage_tasks": {},
    }
    return RollbackWaveOperator(
        task_id="rollback.prod.one",
        **_where(store, repo, commit),
        targets=[
            {
                "fields": {"name": "t1", "dir": str(target)},
                "deploy": {"type": "command", "deploy": DEPLOY, "rollback": ROLLBACK},
            }
        ],
        plan=plan,
        index=0,
    )


def test_a_deploy_that_failed_part_way_is_undone_from_its_own_commit_back_to_what_the_ledger_records(world):
    repo, store, target, first, second = world
    _deploy(store, repo, target, first, DEPLOY).execute(task_context(run_id="r1"))
    with pytest.raises(AirflowFailException):
        _deploy(store, repo, target, second, FAIL_HALFWAY).execute(task_context(run_id="r2"))
    assert (target / "VERSION").read_text().strip() == second  # half done: the ledger still says `first`

    ti = TaskInstanceStandIn(task_states={"r2": {DEPLOY_TASK: "failed"}})
    _rollback(store, repo, target, second).execute(task_context(ti, run_id="r2"))

    # the rollback ran from a checkout of the failed commit (not of what it restores), to `first`
    assert (target / "rollbacks.log").read_text().split() == ["undo", second, "restore", first, "in", second]
    assert (target / "VERSION").read_text().strip() == first
    ledger = Ledger(object_store(store), "app")
    current = ledger.read("t1").current
    assert (current.commit, current.action, current.run_id) == (first, "rollback", "r2")
    assert current.config["deploy"]["deploy"] == FAIL_HALFWAY  # how the undone deploy ran, from its mark
    assert ledger.mark("t1") is None


def test_a_first_deploy_that_failed_part_way_with_nothing_known_before_is_refused_not_removed(world):
    repo, store, target, _, second = world
    with pytest.raises(AirflowFailException):
        _deploy(store, repo, target, second, FAIL_HALFWAY).execute(task_context(run_id="r1"))

    ti = TaskInstanceStandIn(task_states={"r1": {DEPLOY_TASK: "failed"}})
    with pytest.raises(AirflowFailException, match="t1"):
        _rollback(store, repo, target, second).execute(task_context(ti, run_id="r1"))

    assert not (
        target / "rollbacks.log"
    ).exists()  # nothing ran: handsoff never removes what it did not create
    assert (target / "VERSION").read_text().strip() == second
