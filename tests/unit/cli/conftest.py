"""Fixtures of the CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import DEPLOY, spec


@pytest.fixture
def specs_dir(tmp_path: Path) -> Path:
    """A specs folder: one template and two valid specs (one in a subfolder)."""
    root = tmp_path / "specs"
    (root / "templates").mkdir(parents=True)
    (root / "team").mkdir()
    (root / "templates/base.json").write_text(
        json.dumps({"source": {"repo": "/srv/git/app.git"}, "deploy": DEPLOY})
    )
    (root / "orders.json").write_text(json.dumps(spec("orders")))
    (root / "team/billing.json").write_text(json.dumps(spec("billing")))
    return root
