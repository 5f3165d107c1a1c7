"""The Lambda pipeline of the alarm and rollback system tests: three prod waves on moto, one alarm each.

Its fixtures (`lambdas`, `setup`) are in tests/system/conftest.py.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

PIPELINE = "orders"
WAVES = [
    ("onebox", "use1-onebox", "us-east-1"),
    ("first-region", "use1", "us-east-1"),
    ("rest", "usw2", "us-west-2"),
]


def lambda_spec(repo: Path, scope: str, bakes: tuple[str, str, str] = ("2s", "8s", "2s"), **extra) -> dict:
    """Three prod waves of one Lambda target each, alarm-watched bakes, rollback `scope`."""
    return {
        "pipeline": PIPELINE,
        "source": {"repo": str(repo), "branch": "main"},
        "artifacts": {"store": (repo.parent / "store").as_uri()},
        "build": {"steps": [{"name": "compile", "command": "make build"}], "artifact": "dist/greeter.zip"},
        "deploy": {
            "type": "lambda",
            "function": "orders-${target.name}",
            "alias": "live",
            "region": "${target.region}",
        },
        "alarms": {"rollback": ["orders-${target.name}-errors"], "insufficient_data": "alarm", "poll": "1s"},
        "rollback": {"scope": scope, "retries": 2, "retry_delay": "1s"},
        "stages": [
            {
                "name": "prod",
                "waves": [
                    {"name": wave, "targets": [{"name": target, "region": region}], "bake": bake}
                    for (wave, target, region), bake in zip(WAVES, bakes, strict=True)
                ],
            }
        ],
        **extra,
    }


def zip_bytes() -> bytes:
    """A Lambda deployment package."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 'initial'\n")
    return buffer.getvalue()


def live_version(aws, target: str, region: str) -> str:
    """The version alias `live` of the target's function points at."""
    return aws.client("lambda", region).get_alias(FunctionName=f"orders-{target}", Name="live")[
        "FunctionVersion"
    ]
