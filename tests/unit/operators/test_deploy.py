"""The deploy task on its own: one target, one commit, the ledger's in-flight protocol around the deploy.

A real git repository and a real artifact store on disk; the command deployer writes the target's folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from handsoff.operators.deploy import DeployTargetOperator
from handsoff.store.artifacts import ArtifactStore, store_root
from handsoff.store.ledger import Ledger
from support.context import task_context
from support.repos import make_service_repo

DEPLOY = 'echo "$HANDSOFF_COMMIT $HANDSOFF_PREVIOUS_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"'


@pytest.fixture
def world(tmp_path: Path):
    """A repo with two commits, both built into the store, and the target's folder."""
    repo = make_service_repo(tmp_path / "app.git")
    first = repo.commit("first")
    second = repo.commit("second")
    store = (tmp_path / "store").as_uri()
    artifacts = ArtifactStore(store_root(store), "app")
    for sha in (first, second):
        built = tmp_path / f"{sha}.zip"
        built.write_text(sha)
        artifacts.put(sha, built)
    target = tmp_path / "fleet" / "t1"
    target.mkdir(parents=True)
    return repo, store, target, first, second


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
    return Ledger(store_root(store), "app")


def _marked(store: str) -> bool:
    return (_ledger(store).base / "t1.inflight.json").exists()


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
def test_a_deploy_that_fails_in_this_process_clears_its_mark_so_a_retry_may_deploy(world, failure):
    repo, store, target, first, _ = world
    missing = "0" * 40
    command, commit = ("exit 3", first) if failure == "command" else (DEPLOY, missing)

    with pytest.raises((AirflowFailException, FileNotFoundError)):
        _deploy(store, repo, target, commit, command).execute(task_context(run_id="r1"))

    assert not _marked(store) and _ledger(store).read("t1").current is None
    _deploy(store, repo, target, first).execute(task_context(run_id="r1"))  # the retry deploys
    assert _ledger(store).read("t1").current.commit == first
