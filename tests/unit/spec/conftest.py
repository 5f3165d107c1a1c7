"""Fixtures of the spec-layer tests: the issue's example spec and a specs folder in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.specs import ISSUE_EXAMPLE

EXAMPLE: dict[str, Any] = ISSUE_EXAMPLE

SERVICE_TEMPLATE: dict[str, Any] = {"tags": ["service", "tier-1"], "owners": ["platform-team"]}


class Specs:
    """A specs root in tmp_path: ``write`` JSON files, then load or validate them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, document: Any) -> Path:
        """Write `document` as JSON (or `document` itself when it is a str) at root/relative."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(document if isinstance(document, str) else json.dumps(document, indent=1))
        return path


@pytest.fixture
def example() -> dict[str, Any]:
    """A fresh, mutable copy of the issue's example spec."""
    return json.loads(json.dumps(EXAMPLE))


@pytest.fixture
def specs(tmp_path: Path) -> Specs:
    """A specs root holding templates/service.json (adds tags and owners)."""
    specs = Specs(tmp_path / "specs")
    specs.write("templates/service.json", SERVICE_TEMPLATE)
    return specs
