"""The deployment ledger: what runs where now, what ran before, across deploys and rollbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from handsoff.model.records import LedgerEntry, TargetRecord
from handsoff.store.artifacts import store_root
from handsoff.store.ledger import DeployInterrupted, Ledger


def _entry(commit: str, run: str, action: str = "deploy") -> LedgerEntry:
    return LedgerEntry(commit=commit, run_id=run, time="2026-11-26T10:00:00+00:00", action=action)


def test_deploys_shift_current_to_previous(tmp_path: Path):
    ledger = Ledger(store_root(tmp_path.as_uri()), "svc")
    assert ledger.read("t1").current is None

    ledger.record_deploy("t1", _entry("aaa", "r1"))
    ledger.record_deploy("t1", _entry("bbb", "r2"))
    record = ledger.read("t1")

    assert (record.current.commit, record.previous.commit) == ("bbb", "aaa")
    assert [e.commit for e in record.history] == ["aaa", "bbb"]
    assert (tmp_path / "svc" / "ledger" / "t1.json").is_file()


def test_redeploying_the_running_commit_keeps_previous(tmp_path: Path):
    ledger = Ledger(store_root(tmp_path.as_uri()), "svc")
    ledger.record_deploy("t1", _entry("aaa", "r1"))
    ledger.record_deploy("t1", _entry("bbb", "r2"))
    ledger.record_deploy("t1", _entry("bbb", "r3"))

    record = ledger.read("t1")
    assert (record.current.commit, record.current.run_id, record.previous.commit) == ("bbb", "r3", "aaa")


def test_rollback_restores_previous_and_finds_the_one_before(tmp_path: Path):
    ledger = Ledger(store_root(tmp_path.as_uri()), "svc")
    for commit, run in (("aaa", "r1"), ("bbb", "r2"), ("ccc", "r3")):
        ledger.record_deploy("t1", _entry(commit, run))

    record = ledger.record_rollback("t1", _entry("bbb", "r3", action="rollback"))
    assert (record.current.commit, record.previous.commit) == ("bbb", "aaa")

    record = ledger.record_rollback("t1", _entry("", "r4", action="rollback"))
    assert (record.current, record.previous) == (None, None)


def test_all_lists_every_target(tmp_path: Path):
    ledger = Ledger(store_root(tmp_path.as_uri()), "svc")
    assert ledger.all() == []
    ledger.record_deploy("b", _entry("aaa", "r1"))
    ledger.record_deploy("a", _entry("aaa", "r1"))
    assert [r.target for r in ledger.all()] == ["a", "b"]


def test_an_interrupted_deploy_is_recognised_by_the_next_try(tmp_path: Path):
    ledger = Ledger(store_root(tmp_path.as_uri()), "svc")

    assert ledger.begin_deploy("t1", "r1", "aaa") == TargetRecord("t1")  # first try: nothing ran there
    with pytest.raises(DeployInterrupted) as earlier:  # the try after a killed worker
        ledger.begin_deploy("t1", "r1", "aaa")
    assert earlier.value.mark["run_id"] == "r1"
    ledger.end_deploy("t1")
    assert ledger.begin_deploy("t1", "r2", "bbb") == TargetRecord("t1")  # another run starts clean
    ledger.record_deploy("t1", _entry("bbb", "r2"))
    assert [r.target for r in ledger.all()] == ["t1"]  # the in-flight mark is not a target
