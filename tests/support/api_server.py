"""A real `airflow api-server` with the example pipelines parsed into the DB, for trigger tests.

No scheduler runs: triggered runs stay queued, which is all the trigger tests look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from handsoff.hooks.airflow_api import AirflowApi

from support.airflow import AirflowProcess, api_client, api_env, free_port, wait_for_http
from support.repos import EXAMPLES_SPECS, GIT_ENV, ServiceRepo, git, make_service_repo

DAG_IDS = ("greeter-app", "greeter-config", "greeter-app__rollback")


@dataclass
class Server:
    """The running api-server, the specs it parsed, and the repository those specs name."""

    url: str
    client: AirflowApi
    specs: Path
    repo: ServiceRepo

    def run_ids(self, dag_id: str = "greeter-app") -> set[str]:
        """Ids of every run of `dag_id`."""
        body = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=1000")
        return {run["dag_run_id"] for run in body["dag_runs"]}

    def run(self, run_id: str, dag_id: str = "greeter-app") -> dict:
        """One run, as the REST API shows it."""
        return self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")


def example_specs_with_repo(root: Path) -> tuple[Path, ServiceRepo]:
    """The example specs under `root/specs` and the git repo they name (`root/.demo/git/greeter.git`)."""
    specs = root / "specs"
    shutil.copytree(EXAMPLES_SPECS, specs)
    return specs, make_service_repo(root / ".demo" / "git" / "greeter.git")


def push(work: Path, refspec: str) -> tuple[int, str]:
    """`git push origin REFSPEC` from `work`; (exit code, stderr: where the hook's output goes)."""
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(
        ["git", "push", "origin", refspec], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stderr


def commit_on(repo: ServiceRepo, branch: str, message: str) -> str:
    """Commit a CHANGELOG line on `branch` of the work clone (created from main if new); return the SHA."""
    if branch != "main":
        git("checkout", "-q", "-B", branch, cwd=repo.work)
    with (repo.work / "CHANGELOG").open("a") as fh:
        fh.write(message + "\n")
    git("commit", "-q", "-am", message, cwd=repo.work)
    sha = git("rev-parse", "HEAD", cwd=repo.work)
    if branch != "main":
        git("checkout", "-q", "main", cwd=repo.work)
    return sha


@contextmanager
def api_server(workdir: Path, specs: Path) -> Iterator[str]:
    """Parse `specs` into the DB (`dag-processor --num-runs 1`) while an api-server starts; yield its URL."""
    port = free_port()
    env = api_env(port, {"HANDSOFF_SPECS_DIR": str(specs)})
    url = f"http://127.0.0.1:{port}"
    with (
        AirflowProcess(["api-server", "--port", str(port)], env, workdir / "api-server.log") as api,
        AirflowProcess(["dag-processor", "--num-runs", "1"], env, workdir / "dag-processor.log") as parser,
    ):
        assert parser.wait(timeout=180) == 0, parser.tail()
        wait_for_http(f"{url}/api/v2/monitor/health", timeout=120, proc=api)
        client = api_client(url)
        for dag_id in DAG_IDS:
            client.get(f"/api/v2/dags/{dag_id}")
        yield url
