"""`handsoff rollback` against a real api-server: names checked locally, the run created with its conf."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.airflow import api_client
from support.api_server import Server, api_server, example_specs_with_repo

HANDSOFF = str(Path(sys.executable).with_name("handsoff"))


@pytest.fixture(scope="module")
def server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("rollback-cli")
    specs, repo = example_specs_with_repo(root)
    with api_server(root, specs) as url:
        yield Server(url, api_client(url), specs, repo)


def handsoff(server: Server, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HANDSOFF_SPECS_DIR": str(server.specs), "HANDSOFF_AIRFLOW_URL": server.url}
    env.pop("HANDSOFF_AIRFLOW_TOKEN", None)
    return subprocess.run([HANDSOFF, *argv], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_rollback_session_creates_the_run_with_its_conf(server: Server):
    login = ("--username", "admin", "--password", "admin")
    done = handsoff(server, "rollback", "greeter-app", "--stage", "prod", "--reason", "INC-7 5xx", *login)

    print(f"$ handsoff rollback greeter-app --stage prod --reason 'INC-7 5xx' ...\n{done.stdout}")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split(" run ")[1].split(":")[0]
    run = server.run(run_id, dag_id="greeter-app__rollback")
    assert run["conf"] == {
        "scope": "stage",
        "targets": [],
        "wave": None,
        "stage": "prod",
        "to": None,
        "reason": "INC-7 5xx",
        "requested_by": "admin",
    }

    refused = handsoff(server, "rollback", "greeter-app", "--target", "mars", "--reason", "x", *login)
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "handsoff rollback: error: greeter-app: unknown target(s) mars; targets: "
    )
    assert server.run_ids("greeter-app__rollback") == {run_id}  # nothing triggered
