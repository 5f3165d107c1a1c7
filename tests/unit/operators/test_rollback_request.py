"""The on-demand rollback's tasks on their own: `plan` validates and branches, `restore` puts targets back.

A real artifact store and ledger on disk, a real git repository; the command deployer's rollback command
writes what it restores into the target's folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from handsoff.model.records import LedgerEntry
from handsoff.operators.rollback_request import PLAN_KEY, RestoreWaveOperator, RollbackRequestPlanOperator
from handsoff.store.artifacts import ArtifactStore, store_root
from handsoff.store.ledger import Ledger
from support.context import TaskInstanceStandIn, task_context
from support.repos import make_service_repo

ROLLBACK = 'echo "$HANDSOFF_PREVIOUS_COMMIT" > "$HANDSOFF_TARGET_DIR/VERSION"'


@pytest.fixture
def deployed(tmp_path: Path):
    """t1 and t2 (wave prod.one) ran c1 then c2; t3 (wave prod.two) was never deployed."""
    repo = make_service_repo(tmp_path / "app.git")
    shas = [repo.commit(f"change {n}") for n in (1, 2)]
    store = (tmp_path / "store").as_uri()
    artifacts, ledger = ArtifactStore(store_root(store), "app"), Ledger(store_root(store), "app")
    for number, sha in enumerate(shas, 1):
        built = tmp_path / f"{sha}.zip"
        built.write_text(sha)
        artifacts.put(sha, built)
        for name in ("t1", "t2"):
            entry = LedgerEntry(commit=sha, run_id=f"merge-{number}", time=f"2026-12-0{number}T10:00:00")
            ledger.record_deploy(name, entry)
    folders = {name: tmp_path / "fleet" / name for name in ("t1", "t2", "t3")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    layout = [
        {"stage": "prod", "wave": "one", "targets": [_target("t1", folders), _target("t2", folders)]},
        {"stage": "prod", "wave": "two", "targets": [_target("t3", folders)]},
    ]
    return repo, store, ledger, layout, folders, shas


def _target(name: str, folders: dict[str, Path]) -> dict:
    deploy = {"type": "command", "deploy": "true", "rollback": ROLLBACK}
    return {"fields": {"name": name, "dir": str(folders[name])}, "deploy": deploy, "alarms": {}}


def _plan(store: str, layout: list[dict]) -> RollbackRequestPlanOperator:
    return RollbackRequestPlanOperator(
        task_id="plan",
        pipeline="app",
        layout=layout,
        store=store,
        aws_conn_id="aws_default",
        restore_tasks={"prod.one": "prod.one.restore", "prod.two": "prod.two.restore"},
        always=["stop_deployments"],
    )


def _restore(repo, store: str, wave: dict) -> RestoreWaveOperator:
    return RestoreWaveOperator(
        task_id="restore",
        pipeline="app",
        repo=str(repo.bare),
        store=store,
        stage=wave["stage"],
        wave=wave["wave"],
        targets=wave["targets"],
        plan_task="plan",
    )


def _params(**given) -> dict:
    return {"scope": "target", "targets": [], "wave": None, "stage": None, "to": None, "reason": "", **given}


def test_the_plan_branches_to_the_chosen_waves_and_keeps_what_it_chose(deployed):
    _, store, _, layout, _, _ = deployed
    ti = TaskInstanceStandIn(task_id="plan")
    context = task_context(ti, params=_params(scope="all", reason="INC-7"))

    branches = _plan(store, layout).choose_branch(context)

    assert list(branches) == ["stop_deployments", "prod.two.restore", "prod.one.restore"]
    assert ti.xcoms[("plan", PLAN_KEY)] == [
        {"wave": "prod.two", "targets": ["t3"]},
        {"wave": "prod.one", "targets": ["t1", "t2"]},
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (_params(targets=["t9"], reason="x"), "unknown target"),
        (_params(targets=["t1"]), "needs a reason"),
        (
            _params(targets=["t1"], to="deadbeef", reason="x"),
            "commit deadbeef was never deployed to target t1",
        ),
    ],
)
def test_the_plan_refuses_a_request_it_cannot_carry_out_and_changes_nothing(deployed, params, message):
    _, store, ledger, layout, _, shas = deployed

    with pytest.raises(AirflowFailException, match=f"rollback of app refused, nothing changed: .*{message}"):
        _plan(store, layout).choose_branch(task_context(params=params))

    assert ledger.read("t1").current.commit == shas[1]


def test_restore_puts_the_planned_targets_back_and_records_who_and_why(deployed):
    repo, store, ledger, layout, folders, shas = deployed
    ti = TaskInstanceStandIn(xcoms={("plan", PLAN_KEY): [{"wave": "prod.one", "targets": ["t1"]}]})
    context = task_context(
        ti, run_id="rollback-1", params=_params(targets=["t1"], reason="INC-7"), triggering_user_name="alice"
    )

    done = _restore(repo, store, layout[0]).execute(context)

    assert done == [{"target": "t1", "from": shas[1], "to": shas[0], "alarms": {}}]
    assert (folders["t1"] / "VERSION").read_text().strip() == shas[0]
    assert not (folders["t2"] / "VERSION").exists()  # not in the plan
    current = ledger.read("t1").current
    assert (current.commit, current.action, current.requested_by, current.reason) == (
        shas[0],
        "rollback",
        "alice",
        "INC-7",
    )
    assert ledger.read("t2").current.commit == shas[1]
    again = _restore(repo, store, layout[0]).execute(context)  # a retry of the same run
    assert again == [] and len(ledger.read("t1").history) == 3


def test_restore_to_a_named_commit_and_a_wave_outside_the_plan_is_skipped(deployed):
    repo, store, ledger, layout, folders, shas = deployed
    plan = [{"wave": "prod.one", "targets": ["t1", "t2"]}]
    ti = TaskInstanceStandIn(xcoms={("plan", PLAN_KEY): plan})
    context = task_context(ti, params=_params(scope="wave", wave="one", to=shas[0][:8], reason="back"))

    _restore(repo, store, layout[0]).execute(context)
    with pytest.raises(AirflowSkipException, match="wave prod.two is not in this rollback"):
        _restore(repo, store, layout[1]).execute(context)

    assert [ledger.read(t).current.commit for t in ("t1", "t2")] == [shas[0], shas[0]]
    assert ledger.read("t3").current is None and not (folders["t3"] / "VERSION").exists()
