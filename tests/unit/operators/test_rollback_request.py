"""The on-demand rollback's tasks on their own: `plan` validates, `restore` puts targets back from the ledger.

A real artifact store and ledger on disk, a real git repository; the command deployer's rollback command
writes what it restores into the target's folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from handsoff.model.records import LedgerEntry
from handsoff.operators.rollback_request import PLAN_KEY, RestoreTargetsOperator, RollbackRequestPlanOperator
from handsoff.store.artifacts import ArtifactStore, store_root
from handsoff.store.lease import PipelineLease
from handsoff.store.ledger import Ledger
from handsoff.store.objects import object_store
from support.context import TaskInstanceStandIn, task_context
from support.repos import make_service_repo

ROLLBACK = 'echo "$HANDSOFF_PREVIOUS_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"'


def _deploy_config(folder: Path, rollback: str = ROLLBACK) -> dict:
    deploy = {"type": "command", "deploy": "true", "rollback": rollback}
    return {
        "deploy": deploy,
        "target": {"name": folder.name, "dir": str(folder)},
        "aws_conn_id": "aws_default",
    }


@pytest.fixture
def deployed(tmp_path: Path):
    """t1, t2 (wave prod.one) and old (no longer in the spec) ran c1 then c2; t3 (prod.two) never did."""
    repo = make_service_repo(tmp_path / "app.git")
    shas = [repo.commit(f"change {n}") for n in (1, 2)]
    store = (tmp_path / "store").as_uri()
    artifacts, ledger = ArtifactStore(store_root(store), "app"), Ledger(object_store(store), "app")
    folders = {name: tmp_path / "fleet" / name for name in ("t1", "t2", "t3", "old")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    for number, sha in enumerate(shas, 1):
        built = tmp_path / f"{sha}.zip"
        built.write_text(sha)
        artifacts.put(sha, built)
        for name in ("t1", "t2", "old"):
            entry = LedgerEntry(
                commit=sha,
                run_id=f"merge-{number}",
                time=f"2026-12-0{number}T10:00:0{['old', 't1', 't2'].index(name)}",
                stage="prod",
                wave="one",
                config=_deploy_config(folders[name]),
            )
            ledger.record_deploy(name, entry)
    layout = [
        {"stage": "prod", "wave": "one", "targets": [_target("t1", folders), _target("t2", folders)]},
        {"stage": "prod", "wave": "two", "targets": [_target("t3", folders)]},
    ]
    return repo, store, ledger, layout, folders, shas


def _target(name: str, folders: dict[str, Path]) -> dict:
    config = _deploy_config(folders[name], rollback="echo the spec changed since > /dev/null; exit 9")
    return {"fields": config["target"], "deploy": config["deploy"], "alarms": {}}


def _plan(repo, store: str, layout: list[dict]) -> RollbackRequestPlanOperator:
    return RollbackRequestPlanOperator(
        task_id="plan", pipeline="app", repo=str(repo.bare), store=store, layout=layout
    )


def _restore(repo, store: str) -> RestoreTargetsOperator:
    return RestoreTargetsOperator(
        task_id="restore", pipeline="app", repo=str(repo.bare), store=store, plan_task="plan"
    )


def _params(**given) -> dict:
    return {"scope": "target", "targets": [], "wave": None, "stage": None, "to": None, "reason": "", **given}


def _planned(repo, store, layout, **params) -> TaskInstanceStandIn:
    ti = TaskInstanceStandIn(task_id="plan")
    _plan(repo, store, layout).execute(task_context(ti, params=_params(**params)))
    return ti


def test_the_plan_takes_the_spec_and_the_ledger_newest_wave_first(deployed):
    repo, store, _, layout, _, _ = deployed

    ti = _planned(repo, store, layout, scope="all", reason="INC-7")

    plan = ti.xcoms[("plan", PLAN_KEY)]
    assert [(step["wave"], step["fields"]["name"]) for step in plan] == [
        ("prod.two", "t3"),  # never deployed: nothing to do there
        ("prod.one", "t1"),
        ("prod.one", "t2"),
        ("prod.one", "old"),  # not in the spec any more: the ledger knows it, and its wave
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (_params(targets=["t9"], reason="x"), "unknown target"),
        (_params(targets=["t1"]), "needs a reason"),
        (_params(targets=["t1"], to="deadbeef", reason="x"), "commit deadbeef was never deployed to t"),
    ],
)
def test_the_plan_refuses_a_request_it_cannot_carry_out_and_changes_nothing(deployed, params, message):
    repo, store, ledger, layout, _, shas = deployed

    with pytest.raises(AirflowFailException, match=f"rollback of app refused, nothing changed: .*{message}"):
        _plan(repo, store, layout).execute(task_context(params=params))

    assert ledger.read("t1").current.commit == shas[1]


def test_restore_goes_back_at_the_recorded_coordinates_and_records_who_and_why(deployed):
    repo, store, ledger, layout, folders, shas = deployed
    ti = _planned(repo, store, layout, targets=["t1", "old"], reason="INC-7")
    context = task_context(ti, run_id="rollback-1", params=_params(targets=["t1", "old"], reason="INC-7"))
    context["dag_run"].triggering_user_name = "alice"

    done = _restore(repo, store).execute(context)

    assert [d["target"] for d in done] == ["t1", "old"] and {d["to"] for d in done} == {shas[0]}
    # the spec's rollback command changed to one that fails: the recorded one ran
    assert (folders["t1"] / "VERSION").read_text().strip() == shas[0]
    assert (folders["old"] / "VERSION").read_text().strip() == shas[0]
    assert not (folders["t2"] / "VERSION").exists()  # not asked for
    current = ledger.read("t1").current
    assert (current.commit, current.action, current.requested_by, current.reason) == (
        shas[0],
        "rollback",
        "alice",
        "INC-7",
    )
    assert PipelineLease(object_store(store), "app").holder()["holder"] == "rollback-1"
    again = _restore(repo, store).execute(context)  # a retry of the same run
    assert again == [] and len(ledger.read("t1").history) == 3


def test_targets_whose_artifact_is_gone_are_refused_and_their_ledger_stays_true(deployed, tmp_path):
    repo, store, ledger, layout, folders, shas = deployed
    for path in (tmp_path / "store" / "app" / "artifacts" / shas[0]).iterdir():
        path.unlink()  # as an object-store lifecycle rule would
    ti = _planned(repo, store, layout, scope="wave", wave="one", reason="bad")

    with pytest.raises(
        AirflowFailException, match=f"artifact of commit {shas[0][:12]}.* is no longer in the store"
    ):
        _restore(repo, store).execute(
            task_context(ti, params=_params(scope="wave", wave="one", reason="bad"))
        )

    assert [ledger.read(t).current.commit for t in ("t1", "t2", "old")] == [shas[1]] * 3  # the ledger is true
    assert not any((folder / "VERSION").exists() for folder in folders.values())  # nothing ran
