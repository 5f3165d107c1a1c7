"""A test shard on its own: its slice of the suite, in a checkout of the commit, with the stored artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from handsoff.operators.shard import RunTestShardOperator
from handsoff.store.artifacts import ArtifactStore, store_root
from support.context import task_context
from support.repos import make_service_repo

REPORT = (
    'echo "$HANDSOFF_TEST $HANDSOFF_SHARD_INDEX/$HANDSOFF_SHARD_TOTAL $HANDSOFF_COMMIT '
    '$(cat "$HANDSOFF_ARTIFACT") $(git rev-parse HEAD)" > "$OUT/shard-$HANDSOFF_SHARD_INDEX"'
)


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    repo = make_service_repo(tmp_path / "app.git")
    sha = repo.commit("change")
    store = (tmp_path / "store").as_uri()
    artifact = tmp_path / "app.zip"
    artifact.write_text("the built bytes")
    ArtifactStore(store_root(store), "app").put(sha, artifact)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("OUT", str(out))
    return repo, store, sha, out


def _shard(repo, store: str, sha: str, index: int, command: str, timeout: str | None = None):
    return RunTestShardOperator(
        task_id="test_integ",
        pipeline="app",
        repo=str(repo.bare),
        commit=sha,
        store=store,
        stage="beta",
        test="integ",
        command=command,
        shard_total=3,
        shard_index=index,
        timeout=timeout,
    )


def test_each_shard_runs_its_slice_in_a_checkout_of_the_commit_with_the_artifact(built):
    repo, store, sha, out = built

    for index in range(3):
        _shard(repo, store, sha, index, REPORT).execute(task_context())

    lines = [(out / f"shard-{i}").read_text().split() for i in range(3)]
    assert lines == [["integ", f"{i}/3", sha, "the", "built", "bytes", sha] for i in range(3)]


def test_a_failing_shard_fails_naming_the_suite_and_shard(built):
    repo, store, sha, _ = built

    with pytest.raises(AirflowFailException, match=r"integ shard 2/3: exited with code 7"):
        _shard(repo, store, sha, 1, "exit 7").execute(task_context())


def test_a_shard_past_its_timeout_fails(built):
    repo, store, sha, _ = built

    with pytest.raises(AirflowFailException, match=r"integ shard 1/3: timed out after 1s"):
        _shard(repo, store, sha, 0, "sleep 30", timeout="1s").execute(task_context())


def test_a_commit_without_a_stored_artifact_fails_before_running_anything(built):
    repo, store, _, out = built

    with pytest.raises(FileNotFoundError, match="no complete artifact"):
        _shard(repo, store, "f" * 40, 0, REPORT).execute(task_context())
    assert not list(out.iterdir())
