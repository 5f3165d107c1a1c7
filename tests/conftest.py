"""Shared fixtures: one real Airflow metadata DB (SQLite) per session, real git repositories.

Airflow reads its configuration when first imported, so the environment is set here, before any test
module imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_SPECS = REPO_ROOT / "pipeline_specs"
EXAMPLE_SERVICE = REPO_ROOT / "examples" / "greeter"

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="handsoff-tests-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "HANDSOFF_SPECS_DIR": str(EXAMPLES_SPECS),
        # build and test commands call python3 (and coverage) from this environment
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
)
for _var in ("AIRFLOW_CONN_AWS_DEFAULT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
    os.environ.pop(_var, None)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev One",
    "GIT_AUTHOR_EMAIL": "dev1@example.com",
    "GIT_COMMITTER_NAME": "Dev One",
    "GIT_COMMITTER_EMAIL": "dev1@example.com",
}


def airflow_bin() -> str:
    """The `airflow` executable of this interpreter's environment."""
    return str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB (`airflow db migrate` once per session); returns AIRFLOW_HOME."""
    subprocess.run([airflow_bin(), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return _AIRFLOW_HOME


def git(*args: str, cwd: Path) -> str:
    """Run git in `cwd` with a fixed identity; return stdout."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


class ServiceRepo:
    """A real bare git repository of the example service plus a work clone to commit from."""

    def __init__(self, bare: Path, work: Path) -> None:
        self.bare = bare
        self.work = work

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        """Commit `files` (path → text) with `message`, push to main, return the SHA."""
        for rel, text in (files or {"CHANGELOG": message + "\n"}).items():
            path = self.work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as fh:
                fh.write(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", "origin", "HEAD:main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def make_service_repo(bare: Path) -> ServiceRepo:
    """Create `bare` from examples/greeter with one initial commit."""
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=bare.parent)
    work = bare.parent / (bare.stem + "-work")
    shutil.copytree(EXAMPLE_SERVICE, work)
    git("init", "-q", "-b", "main", cwd=work)
    git("remote", "add", "origin", str(bare), cwd=work)
    repo = ServiceRepo(bare, work)
    repo.commit("initial import", files={})
    return repo


@pytest.fixture
def example_specs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, ServiceRepo, Path]]:
    """The shipped example specs in a temp specs root with bakes cut to 1s, their git repo, and the fleet dir.

    Sets HANDSOFF_SPECS_DIR and GREETER_FLEET_DIR for the test.
    """
    specs = tmp_path / "specs"
    shutil.copytree(EXAMPLES_SPECS, specs)
    for spec in specs.rglob("*.json"):
        spec.write_text(json.dumps(_short_bakes(json.loads(spec.read_text())), indent=2))
    repo = make_service_repo(tmp_path / ".demo" / "git" / "greeter.git")
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    monkeypatch.setenv("HANDSOFF_SPECS_DIR", str(specs))
    monkeypatch.setenv("GREETER_FLEET_DIR", str(fleet))
    yield specs, repo, fleet


def _short_bakes(node: object) -> object:
    """Replace every bake duration by 1s (tests keep bakes short)."""
    if isinstance(node, dict):
        return {k: ("1s" if k == "bake" and isinstance(v, str) else _short_bakes(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_short_bakes(v) for v in node]
    return node
