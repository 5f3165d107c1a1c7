"""Conditional writes: truly concurrent writers of one document lose no update, on local disk and on S3."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest
from handsoff.model.records import LedgerEntry
from handsoff.store.ledger import Ledger
from handsoff.store.objects import LocalObjectStore, PreconditionFailed, S3ObjectStore, object_store
from support.aws import SerialMotoServer

WRITERS, EACH = 4, 25


def _count(store, key: str, times: int) -> None:
    for _ in range(times):
        store.update(key, lambda text: (json.dumps({"n": (json.loads(text)["n"] if text else 0) + 1}), None))


def _count_in_a_process(root: str, times: int) -> None:
    _count(LocalObjectStore(Path(root)), "counter.json", times)


@pytest.fixture(scope="module")
def s3():
    """A bucket on a moto server that answers one request at a time, and the connection to it."""
    server = SerialMotoServer()
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_SERIAL_S3", server.connection())
    store = S3ObjectStore("locks", "handsoff", "serial_s3")
    store.client.create_bucket(Bucket="locks")
    yield lambda: S3ObjectStore("locks", "handsoff", "serial_s3")
    mp.undo()
    server.stop()


def test_processes_on_local_disk_lose_no_update(tmp_path: Path):
    ctx = multiprocessing.get_context("fork")
    processes = [ctx.Process(target=_count_in_a_process, args=(str(tmp_path), EACH)) for _ in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)

    assert [p.exitcode for p in processes] == [0] * WRITERS
    assert json.loads(LocalObjectStore(tmp_path).read("counter.json").text) == {"n": WRITERS * EACH}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_threads_lose_no_update(tmp_path: Path, s3, where: str):
    stores = [LocalObjectStore(tmp_path) if where == "local" else s3() for _ in range(WRITERS)]
    key = f"counter-{where}.json"
    threads = [threading.Thread(target=_count, args=(store, key, EACH)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert json.loads(stores[0].read(key).text) == {"n": WRITERS * EACH}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_write_from_a_stale_read_is_refused(tmp_path: Path, s3, where: str):
    store = LocalObjectStore(tmp_path) if where == "local" else s3()
    key = f"doc-{where}.json"
    store.write(key, "one", expect=None)
    seen = store.read(key)
    store.write(key, "two", expect=seen.version)

    with pytest.raises(PreconditionFailed):
        store.write(key, "three", expect=seen.version)  # written by someone who did not see "two"
    with pytest.raises(PreconditionFailed):
        store.write(key, "again", expect=None)  # created meanwhile
    assert store.read(key).text == "two"


def test_concurrent_ledger_writers_of_one_target_keep_every_entry(s3):
    def deploy(worker: int) -> None:
        ledger = Ledger(s3(), "app")
        for n in range(10):
            ledger.record_deploy("t1", LedgerEntry(commit=f"{worker}-{n}", run_id=f"r{worker}", time="t"))

    threads = [threading.Thread(target=deploy, args=(worker,)) for worker in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    history = Ledger(s3(), "app").read("t1").history
    assert sorted(e.commit for e in history) == sorted(f"{w}-{n}" for w in range(WRITERS) for n in range(10))


def test_store_urls_name_their_kind():
    assert isinstance(object_store("file:///var/lib/handsoff"), LocalObjectStore)
    s3 = object_store("s3://aws_default@bucket/some/prefix", "aws_default")
    assert (s3.bucket, s3.prefix, s3.location("a.json")) == (
        "bucket",
        "some/prefix",
        "s3://bucket/some/prefix/a.json",
    )
    with pytest.raises(ValueError, match="only file:// and s3:// stores"):
        object_store("gs://bucket")
