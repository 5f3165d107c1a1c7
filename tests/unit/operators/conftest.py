"""Fixtures of the operator unit tests: one command-deployed target with two built commits."""

from __future__ import annotations

from pathlib import Path

import pytest
from handsoff.store.artifacts import ArtifactStore, store_root
from support.repos import make_service_repo


@pytest.fixture
def world(tmp_path: Path):
    """A repo with two commits, both built into the store (pipeline `app`), and the target's folder.

    Returns (repo, store URL, target folder, first commit, second commit).
    """
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
