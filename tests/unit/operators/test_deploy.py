"""The deploy task on its own: one target, one commit, the ledger's in-flight protocol around the deploy.

A real git repository and a real artifact store on disk; the command deployer writes the target's folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.exceptions import TaskDeferred
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from handsoff.operators.deploy import DeployTargetOperator
from handsoff.store.lease import PipelineLease
from handsoff.store.ledger import Ledger
from handsoff.store.objects import object_store
from handsoff.store.verdicts import Verdicts
from support.context import task_context

DEPLOY = 'echo "$HANDSOFF_COMMIT $HANDSOFF_PREVIOUS_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"'


def _deploy(store: str, repo, target: Path, commit: str, command: str = DEPLOY) -> DeployTargetOperator:
    return DeployTargetOperator(
        task_id="deploy_t1",
        pipeline="app",
        repo=str(repo.bare),
        commit=commit,
        store=store,
        stage="prod",
        wave="one",
        target={"name": "t1", "dir": str(target)},
        deploy={"type": "command", "deploy": command, "rollback": "true"},
    )


def _ledger(store: str) -> Ledger:
    return Ledger(object_store(store), "app")


def _marked(store: str) -> bool:
    return _ledger(store).mark("t1") is not None


def test_a_deploy_runs_the_commit_records_it_and_clears_its_mark(world):
    repo, store, target, first, second = world

    _deploy(store, repo, target, first).execute(task_context(run_id="r1"))
    result = _deploy(store, repo, target, second).execute(task_context(run_id="r2"))

    assert (target / "VERSION").read_text().split() == [second, first]
    record = _ledger(store).read("t1")
    assert (record.current.commit, record.current.run_id, record.previous.commit) == (second, "r2", first)
    assert (record.current.stage, record.current.wave) == ("prod", "one")
    assert record.current.artifact.endswith(f"{second}/{second}.zip")
    assert result == {"target": "t1", "commit": second, "previous": first}
    assert not _marked(store)


def test_a_retry_after_the_ledger_recorded_the_deploy_does_nothing(world):
    repo, store, target, first, _ = world
    _deploy(store, repo, target, first).execute(task_context(run_id="r1"))
    (target / "VERSION").write_text("touched since\n")

    result = _deploy(store, repo, target, first).execute(task_context(run_id="r1"))

    assert (target / "VERSION").read_text() == "touched since\n"  # not deployed a second time
    assert result["commit"] == first and len(_ledger(store).read("t1").history) == 1


def test_a_try_cut_off_mid_deploy_is_never_repeated_blindly(world):
    repo, store, target, first, _ = world
    _ledger(store).begin_deploy("t1", "r1", first)  # a worker died after this, before the ledger entry

    with pytest.raises(AirflowFailException, match="was interrupted, so the state of t1 is unknown"):
        _deploy(store, repo, target, first).execute(task_context(run_id="r1"))

    assert not (target / "VERSION").exists()
    assert _ledger(store).read("t1").current is None


@pytest.mark.parametrize("failure", ["command", "artifact"])
def test_a_deploy_that_fails_in_this_process_may_be_retried_and_says_what_ran_before(world, failure):
    repo, store, target, first, _ = world
    missing = "0" * 40
    command, commit = ("exit 3", first) if failure == "command" else (DEPLOY, missing)

    with pytest.raises((AirflowFailException, FileNotFoundError)):
        _deploy(store, repo, target, commit, command).execute(task_context(run_id="r1"))

    mark = _ledger(store).mark("t1")
    if failure == "command":  # it changed (or may have changed) the target: the mark keeps what ran before
        assert mark["state"] == "failed" and mark["run_id"] == "r1"
    else:  # the artifact was missing: nothing started, no mark
        assert mark is None
    assert _ledger(store).read("t1").current is None
    if failure == "command":  # the run found the change bad: no retry or clear promotes it any more
        with pytest.raises(AirflowFailException, match=f"not promoting {first[:12]}: run r1 found it bad at"):
            _deploy(store, repo, target, first).execute(task_context(run_id="r1"))
        Verdicts(object_store(store), "app").allow_again(first, "r2", "alice", "the failure was the network")
    run = "r2" if failure == "command" else "r1"
    _deploy(store, repo, target, first).execute(task_context(run_id=run))  # a run that may deploys
    assert _ledger(store).read("t1").current.commit == first and _ledger(store).mark("t1") is None


def test_a_deploy_waits_while_an_on_demand_rollback_holds_the_pipeline(world):
    repo, store, target, first, _ = world
    PipelineLease(object_store(store), "app").take("rollback-1", "INC-7", stopped=["r-old"])

    with pytest.raises(TaskDeferred) as deferred:  # waits without a worker slot, then looks again
        _deploy(store, repo, target, first).execute(task_context(run_id="r1"))
    assert deferred.value.method_name == "resume"
    assert not (target / "VERSION").exists() and _ledger(store).mark("t1") is None

    with pytest.raises(AirflowSkipException, match="stopped by rollback run rollback-1 .INC-7."):
        _deploy(store, repo, target, first).execute(task_context(run_id="r-old"))  # the run it stopped

    PipelineLease(object_store(store), "app").release("rollback-1")
    _deploy(store, repo, target, first).resume(task_context(run_id="r1"))
    assert _ledger(store).read("t1").current.commit == first


def test_a_deploy_records_where_and_how_it_deployed_and_what_ran_before(world):
    repo, store, target, first, _ = world
    op = _deploy(store, repo, target, first)

    op.execute(task_context(run_id="r1"))

    current = _ledger(store).read("t1").current
    assert current.config == {
        "deploy": op.deploy,
        "target": {"name": "t1", "dir": str(target)},
        "aws_conn_id": "aws_default",
        "repo": str(repo.bare),
    }
    assert current.detail == {"before": None}  # a command deployer without `current` cannot tell
