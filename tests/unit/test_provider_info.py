"""The package registers itself with Airflow: provider metadata and the plugin entry point."""

from __future__ import annotations

import json
import os
import subprocess
from importlib.metadata import entry_points

from support.airflow import airflow_bin


def _airflow(*args: str) -> str:
    return subprocess.run(
        [airflow_bin(), *args], capture_output=True, text=True, env=os.environ.copy(), check=True
    ).stdout


def test_entry_points_are_installed():
    provider = {ep.name: ep.value for ep in entry_points(group="apache_airflow_provider")}
    plugins = {ep.name: ep.value for ep in entry_points(group="airflow.plugins")}

    assert provider["provider_info"] == "handsoff.provider_info:get_provider_info"
    assert plugins["handsoff"] == "handsoff.plugins:HandsoffPlugin"


def test_airflow_lists_the_provider_and_the_plugin():
    providers = _airflow("providers", "list", "-o", "plain")
    plugins = json.loads(_airflow("plugins", "-o", "json"))

    assert "airflow-provider-handsoff" in providers
    [source] = [p["source"] for p in plugins if p["name"] == "handsoff"]
    assert source.startswith("airflow-provider-handsoff==")
