"""Settings read from the environment, with defaults that work in a checkout of the repo."""

from __future__ import annotations

import os
from pathlib import Path

SPECS_DIR_ENV = "HANDSOFF_SPECS_DIR"


def default_specs_dir() -> Path:
    """The specs folder: ``$HANDSOFF_SPECS_DIR``, else the repo's ``pipeline_specs/``."""
    configured = os.environ.get(SPECS_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "pipeline_specs"


AIRFLOW_URL_ENV = "HANDSOFF_AIRFLOW_URL"
AIRFLOW_USERNAME_ENV = "HANDSOFF_AIRFLOW_USERNAME"
AIRFLOW_PASSWORD_ENV = "HANDSOFF_AIRFLOW_PASSWORD"
AIRFLOW_TOKEN_ENV = "HANDSOFF_AIRFLOW_TOKEN"
DEFAULT_AIRFLOW_URL = "http://localhost:8080"


def airflow_url() -> str:
    """The Airflow that `handsoff trigger` talks to: ``$HANDSOFF_AIRFLOW_URL``, else localhost:8080."""
    return os.environ.get(AIRFLOW_URL_ENV) or DEFAULT_AIRFLOW_URL
