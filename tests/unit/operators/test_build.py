"""The build task on a real checkout: steps in order, coverage gate, artifact stored once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from handsoff.operators.build import BuildArtifactOperator
from support.repos import make_service_repo


def _build(tmp_path: Path, repo, commit: str, **kwargs) -> BuildArtifactOperator:
    args = {
        "task_id": "build",
        "pipeline": "svc",
        "repo": str(repo.bare),
        "store": (tmp_path / "store").as_uri(),
        "commit": commit,
        "steps": [
            {"name": "compile", "command": 'echo "compile $HANDSOFF_COMMIT" >> "$LOG"; make build'},
            {"name": "lint", "command": 'echo lint >> "$LOG"'},
        ],
        "artifact": "dist/greeter.zip",
    }
    return BuildArtifactOperator(**{**args, **kwargs})


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOG", str(tmp_path / "build.log"))
    return make_service_repo(tmp_path / "svc.git")


def test_steps_run_in_order_and_the_artifact_is_stored_once(tmp_path: Path, repo):
    sha = repo.commit("change")

    uri = _build(tmp_path, repo, sha).execute({"run_id": "r1"})
    again = _build(tmp_path, repo, sha).execute({"run_id": "r2"})

    assert uri == again == (tmp_path / "store" / "svc" / "artifacts" / sha / "greeter.zip").as_uri()
    assert (tmp_path / "build.log").read_text().splitlines() == [f"compile {sha}", "lint"]  # not rebuilt


def test_coverage_below_the_minimum_fails_the_build(tmp_path: Path, repo):
    sha = repo.commit("change")
    coverage = {"command": "make coverage", "report": "coverage.json", "min_percent": 100}

    with pytest.raises(AirflowFailException, match=r"coverage \d+\.\d% is below the minimum 100%"):
        _build(tmp_path, repo, sha, coverage=coverage).execute({"run_id": "r1"})
    assert not (tmp_path / "store" / "svc" / "artifacts" / sha).exists()


def test_coverage_report_is_read_from_coverage_py_json(tmp_path: Path, repo):
    sha = repo.commit("change")
    report = json.dumps({"totals": {"percent_covered": 81.5}})
    coverage = {"command": f"echo '{report}' > cov.json", "report": "cov.json", "min_percent": 80}

    _build(tmp_path, repo, sha, coverage=coverage).execute({"run_id": "r1"})
    assert (tmp_path / "store" / "svc" / "artifacts" / sha / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"steps": [{"name": "unit-tests", "command": "exit 2"}]},
            "build step unit-tests: exited with code 2",
        ),
        ({"artifact": "dist/missing.zip"}, "the build did not produce the artifact 'dist/missing.zip'"),
        ({"artifact": "../../etc/passwd"}, "artifact path '../../etc/passwd' leaves the checkout"),
    ],
)
def test_a_failed_build_stores_nothing(tmp_path: Path, repo, override: dict, message: str):
    sha = repo.commit("change")
    with pytest.raises(AirflowFailException, match=message.replace(".", r"\.")):
        _build(tmp_path, repo, sha, **override).execute({"run_id": "r1"})
    assert not (tmp_path / "store" / "svc" / "artifacts" / sha).exists()


@pytest.fixture
def full_store(tmp_path: Path):
    """An artifact store on a 64 KiB tmpfs (a real full disk; the tests run as root)."""
    import subprocess

    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_artifact_store_fails_the_build_leaving_nothing_deployable(tmp_path: Path, repo, full_store):
    from handsoff.store.artifacts import ArtifactStore, store_root

    sha = repo.commit("change")
    big = "head -c 300000 /dev/urandom > dist/big.bin"
    steps = [{"name": "big", "command": f"mkdir -p dist && {big}"}]
    build = _build(tmp_path, repo, sha, steps=steps, store=full_store.as_uri(), artifact="dist/big.bin")

    with pytest.raises(AirflowFailException, match="storing the artifact failed: .*No space left on device"):
        build.execute({"run_id": "r1"})
    assert ArtifactStore(store_root(full_store.as_uri()), "svc").find(sha) is None
    assert list((full_store / "svc" / "artifacts" / sha).iterdir()) == []  # the partial file was removed
