"""Specs the tests use: the issue's example, and the example fleet the command deployer writes to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from support.repos import ServiceRepo

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
