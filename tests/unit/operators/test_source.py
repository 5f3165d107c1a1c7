"""The source task: the commit to deploy; a scheduled run skips when the head already runs everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from handsoff.model.records import LedgerEntry
from handsoff.operators.source import ResolveSourceOperator
from handsoff.store.ledger import Ledger
from handsoff.store.objects import object_store
from handsoff.store.verdicts import Verdicts
from support.repos import ServiceRepo, make_service_repo


@dataclass
class FakeRun:
    run_type: str
    conf: dict = field(default_factory=dict)
    dag_id: str = "app"
    run_id: str = "scheduled__2026-11-30T17:00:00+00:00"
    run_after: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FakeTaskInstance:
    pushed: dict = field(default_factory=dict)

    def get_dr_count(self, dag_id: str, states: list[str]) -> int:
        return 0  # nothing waits behind this run

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture
def repo(tmp_path: Path) -> ServiceRepo:
    return make_service_repo(tmp_path / "git" / "app.git")


def source(repo: ServiceRepo, store: Path) -> ResolveSourceOperator:
    return ResolveSourceOperator(
        task_id="source",
        pipeline="app",
        repo=str(repo.bare),
        store=store.as_uri(),
        branch="main",
        commit_key="commit",
        last_wave=["pdx", "dub"],
    )


def deployed(store: Path, commit: str, *targets: str) -> None:
    ledger = Ledger(object_store(store.as_uri()), "app")
    for target in targets:
        ledger.record_deploy(
            target, LedgerEntry(commit=commit, run_id="manual__1", time="2026-11-26T20:00:00")
        )


def execute(task: ResolveSourceOperator, run_type: str, conf: dict | None = None) -> dict:
    ti = FakeTaskInstance()
    result = task.execute({"dag_run": FakeRun(run_type, conf or {}), "ti": ti})
    assert ti.pushed["commit"] == result["commit"]
    return result


def test_a_scheduled_run_skips_when_the_head_already_runs_on_the_last_wave(repo, tmp_path):
    store = tmp_path / "store"
    head = repo.commit("merged while the window was closed")
    deployed(store, head, "pdx", "dub")

    with pytest.raises(AirflowSkipException) as skipped:
        execute(source(repo, store), "scheduled")

    assert str(skipped.value) == (
        f"scheduled run: {head[:12]}, the head of main, already runs on the last wave (pdx, dub); "
        "nothing new to deploy"
    )


def test_a_scheduled_run_deploys_the_head_when_the_last_wave_lacks_it(repo, tmp_path):
    store = tmp_path / "store"
    old = repo.commit("deployed yesterday")
    deployed(store, old, "pdx", "dub")
    head = repo.commit("merged while the window was closed")
    deployed(store, head, "pdx")  # a run that stopped half-way through the last wave

    assert execute(source(repo, store), "scheduled")["commit"] == head


def test_triggered_runs_deploy_even_what_already_runs(repo, tmp_path):
    store = tmp_path / "store"
    head = repo.commit("a change")
    deployed(store, head, "pdx", "dub")

    assert execute(source(repo, store), "manual")["commit"] == head
    assert execute(source(repo, store), "scheduled", {"commit": head[:8]})["commit"] == head  # asked for it


def test_a_commit_a_run_found_bad_is_not_deployed_again_unless_asked_and_the_request_is_recorded(
    repo, tmp_path
):
    store = tmp_path / "store"
    bad = repo.commit("a change whose bake failed")
    verdicts = Verdicts(object_store(store.as_uri()), "app")
    verdicts.record_bad(bad, "merge-1", "prod.onebox.bake", "rollback alarm orders-errors is in ALARM")

    with pytest.raises(AirflowFailException) as refused:
        execute(source(repo, store), "manual")
    with pytest.raises(AirflowSkipException, match="not deploying it again"):
        execute(source(repo, store), "scheduled")  # a window's run of that head ends skipped, not failed
    run = FakeRun("manual", {"again": " the alarm was a false positive "}, run_id="again-1")
    run.triggering_user_name = "alice"
    task = source(repo, store)
    task.execute({"dag_run": run, "ti": FakeTaskInstance()})

    assert str(refused.value) == (
        f"commit {bad[:12]}: run merge-1 found it bad at prod.onebox.bake: rollback alarm orders-errors is "
        f"in ALARM; not deploying it again: deploying it again takes a new run: handsoff trigger app "
        f"--commit "
        f"{bad[:12]} --again --reason …"
    )
    again = verdicts.events(bad)[-1]
    assert (again["verdict"], again["run_id"], again["by"], again["reason"]) == (
        "again",
        "again-1",
        "alice",
        "the alarm was a false positive",
    )
    assert verdicts.blocking(bad, "again-1") is None and verdicts.blocking(bad, "merge-1") is not None
