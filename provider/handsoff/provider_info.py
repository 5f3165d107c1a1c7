"""Provider metadata for Airflow's provider manager (`apache_airflow_provider` entry point)."""

from __future__ import annotations

from typing import Any

from handsoff import __version__


def get_provider_info() -> dict[str, Any]:
    """Describe the handsoff provider to Airflow."""
    return {
        "package-name": "airflow-provider-handsoff",
        "name": "handsoff",
        "description": "Safe, hands-off deployment pipelines written as JSON specs.",
        "versions": [__version__],
        "extra-links": [
            "handsoff.links.aws.CloudWatchAlarmsLink",
            "handsoff.links.aws.DeployedResourceLink",
            "handsoff.links.source.CommitLink",
            "handsoff.links.source.ArtifactLink",
        ],
    }
