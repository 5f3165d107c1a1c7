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
