"""The deployment ledger: what runs where now, what ran before, across deploys and rollbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from handsoff.model.records import LedgerEntry, TargetRecord
from handsoff.store.ledger import DeployInterrupted, Ledger, LedgerDamaged
from handsoff.store.objects import object_store


def _entry(commit: str, run: str, action: str = "deploy") -> LedgerEntry:
    return LedgerEntry(commit=commit, run_id=run, time="2026-11-26T10:00:00+00:00", action=action)


def test_deploys_shift_current_to_previous(tmp_path: Path):
    ledger = Ledger(object_store(tmp_path.as_uri()), "svc")
    assert ledger.read("t1").current is None

    ledger.record_deploy("t1", _entry("aaa", "r1"))
    ledger.record_deploy("t1", _entry("bbb", "r2"))
    record = ledger.read("t1")

    assert (record.current.commit, record.previous.commit) == ("bbb", "aaa")
    assert [e.commit for e in record.history] == ["aaa", "bbb"]
    assert (tmp_path / "svc" / "ledger" / "t1.json").is_file()


def test_redeploying_the_running_commit_keeps_previous(tmp_path: Path):
    ledger = Ledger(object_store(tmp_path.as_uri()), "svc")
    ledger.record_deploy("t1", _entry("aaa", "r1"))
    ledger.record_deploy("t1", _entry("bbb", "r2"))
    ledger.record_deploy("t1", _entry("bbb", "r3"))

    record = ledger.read("t1")
    assert (record.current.commit, record.current.run_id, record.previous.commit) == ("bbb", "r3", "aaa")


def test_rollback_restores_previous_and_finds_the_one_before(tmp_path: Path):
    ledger = Ledger(object_store(tmp_path.as_uri()), "svc")
    for commit, run in (("aaa", "r1"), ("bbb", "r2"), ("ccc", "r3")):
        ledger.record_deploy("t1", _entry(commit, run))

    record = ledger.record_rollback("t1", _entry("bbb", "r3", action="rollback"))
    assert (record.current.commit, record.previous.commit) == ("bbb", "aaa")

    record = ledger.record_rollback("t1", _entry("", "r4", action="rollback"))
    assert (record.current, record.previous) == (None, None)


def test_all_lists_every_target(tmp_path: Path):
    ledger = Ledger(object_store(tmp_path.as_uri()), "svc")
    assert ledger.all() == []
    ledger.record_deploy("b", _entry("aaa", "r1"))
    ledger.record_deploy("a", _entry("aaa", "r1"))
    assert [r.target for r in ledger.all()] == ["a", "b"]


def test_an_interrupted_deploy_is_recognised_by_the_next_try(tmp_path: Path):
    ledger = Ledger(object_store(tmp_path.as_uri()), "svc")

    assert ledger.begin_deploy("t1", "r1", "aaa") == TargetRecord("t1")  # first try: nothing ran there
    with pytest.raises(DeployInterrupted) as earlier:  # the try after a killed worker
        ledger.begin_deploy("t1", "r1", "aaa")
    assert earlier.value.mark["run_id"] == "r1"
    ledger.end_deploy("t1")
    assert ledger.begin_deploy("t1", "r2", "bbb") == TargetRecord("t1")  # another run starts clean
    ledger.record_deploy("t1", _entry("bbb", "r2"))
    assert [r.target for r in ledger.all()] == ["t1"]  # the in-flight mark is not a target


def test_history_is_never_capped_so_the_first_version_stays_reachable(tmp_path: Path):
    ledger = Ledger(object_store(tmp_path.as_uri()), "svc")
    for n in range(150):
        ledger.record_deploy("t1", _entry(f"{n:040d}", f"r{n}"))

    history = ledger.read("t1").history
    assert len(history) == 150 and history[0].commit == f"{0:040d}"


@pytest.mark.parametrize("damage", ["truncated", "not an object"])
def test_a_damaged_record_or_mark_is_an_error_naming_the_file_the_target_and_the_fix(tmp_path: Path, damage):
    ledger = Ledger(object_store(tmp_path.as_uri()), "svc")
    ledger.record_deploy("t1", _entry("a" * 40, "r1"))
    record = tmp_path / "svc" / "ledger" / "t1.json"
    mark = tmp_path / "svc" / "ledger" / "t1.inflight.json"
    text = record.read_text()
    record.write_text(text[: len(text) // 2] if damage == "truncated" else "[]")
    mark.write_text('{"run_id": "r2", "comm')

    with pytest.raises(LedgerDamaged) as broken:
        ledger.read("t1")
    with pytest.raises(LedgerDamaged) as broken_mark:
        ledger.mark("t1")

    assert f"the ledger of target t1 is damaged: {record.as_uri()} does not parse" in str(broken.value)
    assert "restore the document from the store's versioning or backup" in str(broken.value)
    assert f"{mark.as_uri()} does not parse" in str(broken_mark.value)


def test_the_in_flight_mark_keeps_what_ran_before_across_a_clean_failure_and_its_retry(tmp_path: Path):
    ledger = Ledger(object_store(tmp_path.as_uri()), "svc")
    before = {"version": "1"}

    ledger.begin_deploy("t1", "r1", "aaa", before)
    ledger.fail_deploy("t1")  # failed in its own process: the retry may deploy
    assert ledger.mark("t1")["state"] == "failed"
    ledger.begin_deploy("t1", "r1", "aaa", {"version": "2 (half deployed)"})

    assert ledger.mark("t1") | {"time": "-"} == {
        "run_id": "r1",
        "commit": "aaa",
        "time": "-",
        "state": "deploying",
        "before": before,  # what ran before the first try, not what the failed try left
    }
    ledger.record_deploy("t1", _entry("aaa", "r1"))
    assert ledger.mark("t1") is None
