"""Approvals are evidence only as an assigned approver's answer, recorded where the deploys check it.

The approval task's state proves nothing: anyone who may edit the DAG's task instances can mark it success.
So the deploys behind an approval read the recorded answer themselves. (The HITL round trip through the
API server is in tests/system/test_approval_pipeline.py; here the answer arrives as the event the API
server resumes the task with.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk.exceptions import AirflowFailException
from handsoff.operators.approval import DeploymentApprovalOperator
from handsoff.operators.deploy import DeployTargetOperator
from handsoff.store.approvals import Approvals
from handsoff.store.ledger import Ledger
from handsoff.store.objects import object_store
from support.context import task_context

WHERE = "stage prod"
APPROVERS = ["alice", "bob"]


def _approval(store: str, commit: str, instructions: str = "") -> DeploymentApprovalOperator:
    return DeploymentApprovalOperator(
        task_id="prod.approval",
        pipeline="app",
        where=WHERE,
        approvers=APPROVERS,
        commit=commit,
        instructions=instructions,
        deploys=["`t1` (command)"],
        timeout=timedelta(hours=1),
        store=store,
    )


def _deploy(store: str, repo, target: Path, commit: str) -> DeployTargetOperator:
    return DeployTargetOperator(
        task_id="prod.one.deploy_t1",
        pipeline="app",
        repo=str(repo.bare),
        commit=commit,
        store=store,
        stage="prod",
        wave="one",
        target={"name": "t1", "dir": str(target)},
        deploy={"type": "command", "deploy": 'echo "$HANDSOFF_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"'},
        approvals=[{"where": WHERE, "approvers": APPROVERS}],
    )


def _answer(user: str, option: str = "Approve") -> dict:
    return {
        "chosen_options": [option],
        "params_input": {},
        "responded_at": datetime.now(UTC),
        "responded_by_user": {"id": user, "name": user},
    }


def test_a_deploy_behind_an_approval_marked_success_by_hand_refuses_and_changes_nothing(world):
    repo, store, target, first, _ = world
    # nobody answered: the approval task was marked success through the UI or the REST API

    with pytest.raises(
        AirflowFailException, match=r"t1 not deployed: no approval of stage prod by alice or bob"
    ):
        _deploy(store, repo, target, first).execute(task_context(run_id="r1"))

    assert not (target / "VERSION").exists()
    assert Ledger(object_store(store), "app").read("t1").current is None


def test_an_approvers_answer_is_recorded_and_the_deploy_records_who_approved(world):
    repo, store, target, first, _ = world

    _approval(store, first).execute_complete(task_context(run_id="r1"), _answer("alice"))
    _deploy(store, repo, target, first).execute(task_context(run_id="r1"))

    assert (target / "VERSION").read_text().strip() == first
    entry = Ledger(object_store(store), "app").read("t1").current
    [approved] = entry.detail["approved"]
    assert (approved["where"], approved["by"]) == (WHERE, "alice")


def test_an_answer_from_anyone_else_records_nothing_and_the_deploy_refuses(world):
    repo, store, target, first, _ = world

    with pytest.raises(AirflowFailException, match="'mallory', who is not one of alice, bob"):
        _approval(store, first).execute_complete(task_context(run_id="r1"), _answer("mallory"))

    assert Approvals(object_store(store), "app").read("r1", WHERE) is None
    with pytest.raises(AirflowFailException, match="no approval of stage prod"):
        _deploy(store, repo, target, first).execute(task_context(run_id="r1"))


def test_an_approval_counts_for_its_own_run_and_commit_only(world):
    repo, store, target, first, second = world
    _approval(store, first).execute_complete(task_context(run_id="r1"), _answer("bob"))

    with pytest.raises(AirflowFailException, match="no approval of stage prod .* for run r2"):
        _deploy(store, repo, target, first).execute(task_context(run_id="r2"))
    with pytest.raises(AirflowFailException, match=r"for another commit \(" + first[:12]):
        _deploy(store, repo, target, second).execute(task_context(run_id="r1"))
    assert not (target / "VERSION").exists()


def test_a_cleared_approval_asks_again_and_forgets_the_earlier_answer(world, monkeypatch):
    repo, store, target, first, _ = world
    asked = []
    # the HITL request itself goes to the API server, which is not running in a unit test
    monkeypatch.setattr(
        HITLOperator, "execute", lambda self, context: asked.append((self.subject, self.body))
    )
    _approval(store, first).execute_complete(task_context(run_id="r1"), _answer("alice"))

    _approval(store, first).execute(task_context(run_id="r1"))  # the approval task cleared in the UI

    assert len(asked) == 1
    with pytest.raises(AirflowFailException, match="no approval of stage prod"):
        _deploy(store, repo, target, first).execute(task_context(run_id="r1"))


def test_the_approval_text_shows_the_spec_s_instructions_as_written(world, monkeypatch):
    _, store, _, first, _ = world
    asked = []
    monkeypatch.setattr(
        HITLOperator, "execute", lambda self, context: asked.append((self.subject, self.body))
    )
    instructions = "Check {{ dag_run.conf['message'] }} and `docker inspect --format '{{.Id}}' x`"
    approval = _approval(store, first, instructions)

    assert approval.template_fields == ("commit",)  # nothing of the spec is rendered as Jinja
    approval.execute(task_context(run_id="r1"))

    [(subject, body)] = asked
    assert subject == f"app: approve stage prod for commit {first[:12]}"
    assert body.startswith(instructions + "\n")
