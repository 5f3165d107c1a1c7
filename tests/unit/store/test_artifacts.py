"""The artifact store: stored once, complete only with its manifest, verified when fetched."""

from __future__ import annotations

from pathlib import Path

import pytest
from handsoff.store.artifacts import ArtifactStore, default_store_url, store_root


def test_put_find_fetch_round_trip(tmp_path: Path):
    store = ArtifactStore(store_root((tmp_path / "store").as_uri()), "svc")
    built = tmp_path / "app.zip"
    built.write_bytes(b"zip bytes")
    assert store.find("c1") is None

    stored = store.put("c1", built)
    (tmp_path / "out").mkdir()
    fetched = store.fetch("c1", tmp_path / "out")

    assert store.find("c1") == stored
    assert fetched.read_bytes() == b"zip bytes"
    assert stored.size == 9


def test_an_artifact_without_manifest_is_not_complete(tmp_path: Path):
    root = tmp_path / "store"
    (root / "svc" / "artifacts" / "c1").mkdir(parents=True)
    (root / "svc" / "artifacts" / "c1" / "app.zip").write_bytes(b"half")
    store = ArtifactStore(store_root(root.as_uri()), "svc")

    assert store.find("c1") is None
    with pytest.raises(FileNotFoundError, match="no complete artifact for commit c1"):
        store.fetch("c1", tmp_path)


def test_a_corrupted_artifact_is_refused(tmp_path: Path):
    store = ArtifactStore(store_root((tmp_path / "store").as_uri()), "svc")
    built = tmp_path / "app.zip"
    built.write_bytes(b"good")
    store.put("c1", built)
    (tmp_path / "store" / "svc" / "artifacts" / "c1" / "app.zip").write_bytes(b"evil")
    (tmp_path / "out").mkdir()

    with pytest.raises(ValueError, match="does not match its manifest checksum"):
        store.fetch("c1", tmp_path / "out")
    assert not (tmp_path / "out" / "app.zip").exists()


def test_default_store_is_under_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_store_url() == (tmp_path / "handsoff" / "artifacts").as_uri()
