"""Real git repositories of the example service, and the repo's own paths (no Airflow imports here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_SPECS = REPO_ROOT / "pipeline_specs"
EXAMPLE_SERVICE = REPO_ROOT / "examples" / "greeter"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev One",
    "GIT_AUTHOR_EMAIL": "dev1@example.com",
    "GIT_COMMITTER_NAME": "Dev One",
    "GIT_COMMITTER_EMAIL": "dev1@example.com",
}


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
