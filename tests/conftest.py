"""Shared fixtures: one real Airflow metadata DB (SQLite) per session, real git repositories, moto.

Tests mirror the package: `unit/` (one module per package module), `system/` (whole pipelines under
dag.test(), real Airflow processes, the Celery cluster, the browser); their helpers live in `support/`.

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
from support.airflow import airflow_bin
from support.aws import MotoServer
from support.repos import EXAMPLES_SPECS, REPO_ROOT, ServiceRepo, make_service_repo

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


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB (`airflow db migrate` once per session); returns AIRFLOW_HOME."""
    subprocess.run([airflow_bin(), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return _AIRFLOW_HOME


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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server per session; Airflow's `aws_default` connection points at it (credentials `test`)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    conn = {
        "conn_type": "aws",
        "login": "test",
        "password": "test",
        "extra": {"region_name": "us-east-1", "endpoint_url": url},
    }
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(conn)
    try:
        yield MotoServer(url)
    finally:
        os.environ.pop("AIRFLOW_CONN_AWS_DEFAULT", None)
        server.stop()


@pytest.fixture
def aws(moto_server: MotoServer) -> Iterator[MotoServer]:
    """The moto server, emptied after the test."""
    yield moto_server
    moto_server.reset()


#: test modules that start a whole Airflow (standalone or a Celery cluster) and kill parts of it; under
#: `pytest -n`, they share one worker so that two such clusters never compete for the CPU at once
_CLUSTER_MODULES = {"test_celery_topology", "test_faults"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group tests by module for pytest-xdist: module-scoped fixtures (an api-server) start once."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            module = item.nodeid.split("::")[0]
            name = Path(module).stem
            group = "airflow-clusters" if name in _CLUSTER_MODULES else module
            item.add_marker(pytest.mark.xdist_group(group))
