"""Helpers shared by the tests (no Airflow imports here: conftest sets Airflow's environment first)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_SPECS = REPO_ROOT / "pipeline_specs"
EXAMPLE_SERVICE = REPO_ROOT / "examples" / "greeter"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev One",
    "GIT_AUTHOR_EMAIL": "dev1@example.com",
    "GIT_COMMITTER_NAME": "Dev One",
    "GIT_COMMITTER_EMAIL": "dev1@example.com",
}


def airflow_bin() -> str:
    """The `airflow` executable of this interpreter's environment."""
    return str(Path(sys.executable).with_name("airflow"))


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


#: The issue's example spec, exactly as written there (it extends templates/service.json).
ISSUE_EXAMPLE: dict[str, Any] = {
    "pipeline": "orders-api",
    "extends": ["templates/service.json"],
    "description": "Orders API application code",
    "owners": ["orders-team"],
    "source": {"repo": "/srv/git/orders-api.git", "branch": "main"},
    "artifacts": {"store": "file:///var/lib/handsoff/artifacts"},
    "build": {
        "steps": [
            {"name": "compile", "command": "make build"},
            {"name": "unit-tests", "command": "make unit-test"},
            {"name": "static-analysis", "command": "make lint"},
        ],
        "coverage": {"command": "make coverage", "report": "coverage.json", "min_percent": 80},
        "artifact": "dist/orders-api.zip",
    },
    "deploy": {"type": "command", "deploy": "./deploy.sh", "rollback": "./rollback.sh"},
    "stages": [
        {
            "name": "alpha",
            "waves": [{"name": "alpha", "targets": [{"name": "alpha", "region": "us-west-2"}]}],
            "tests": [{"name": "integration", "command": "make integ", "shards": 4}],
            "bake": "5m",
        },
        {
            "name": "beta",
            "waves": [{"name": "beta", "targets": [{"name": "beta", "region": "us-west-2"}]}],
            "tests": [{"name": "integration", "command": "make integ", "shards": 4}],
        },
        {
            "name": "gamma",
            "waves": [
                {
                    "name": "gamma",
                    "targets": [
                        {"name": "gamma-usw2", "region": "us-west-2"},
                        {"name": "gamma-use1", "region": "us-east-1"},
                    ],
                }
            ],
            "tests": [{"name": "canary", "command": "make canary", "shards": 2}],
            "bake": "30m",
        },
        {
            "name": "prod",
            "waves": [
                {"name": "onebox", "targets": [{"name": "use1-onebox", "region": "us-east-1"}], "bake": "1h"},
                {"name": "first-region", "targets": [{"name": "use1", "region": "us-east-1"}], "bake": "12h"},
                {
                    "name": "rest",
                    "targets": [
                        {"name": "usw2", "region": "us-west-2"},
                        {"name": "euw1", "region": "eu-west-1"},
                    ],
                    "bake": "4h",
                },
            ],
        },
    ],
}


def put_alarms(cloudwatch: Any, names: Iterable[str], state: str | None = None) -> None:
    """Create metric alarms through the API (moto starts them in OK; AWS in INSUFFICIENT_DATA), then
    set `state` on each when given."""
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
        if state:
            cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def bulk_alarms(
    names: Iterable[str], state: str = "OK", region: str = "us-east-1", rule: str | None = None
) -> None:
    """Many alarms at once, straight into the moto server's in-process backend (250 API calls take 3 s).

    `rule` makes composite alarms, which moto's API cannot create (no PutCompositeAlarm).
    """
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
    for name in names:
        backend.put_metric_alarm(
            name=name,
            namespace="AWS/Lambda",
            metric_name="Errors",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            period=60,
            threshold=1,
            statistic="Sum",
            description="",
            dimensions=[],
            alarm_actions=[],
            rule=rule,
        )
        if state != "OK":
            backend.set_alarm_state(name, "test", None, state)


@dataclass
class ExampleFleet:
    """The example specs, their git repo, and the folder the example's command deployer deploys to."""

    specs: Path
    repo: ServiceRepo
    fleet: Path
    pipeline: ClassVar[str] = "greeter-app"

    def deploys(self) -> list[tuple[str, ...]]:
        """(action, target, commit) per line of the pipeline's deploys.log."""
        log = self.fleet / self.pipeline / "deploys.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [tuple(line.split()[:3]) for line in lines]

    def deployed(self, commit: str) -> list[str]:
        """The targets deployed with `commit`, once per deploys.log line."""
        return [target for action, target, c in self.deploys() if action == "deploy" and c == commit]

    def version(self, target: str) -> str | None:
        """The commit in the target's VERSION file (None: never deployed)."""
        path = self.fleet / self.pipeline / target / "VERSION"
        return path.read_text().strip() if path.exists() else None
