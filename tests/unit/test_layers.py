"""The layer contract of `make lint` (import-linter, pyproject.toml): kept by the package, broken by a
wrong import planted in a copy of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.repos import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: the end of each contract's name (pyproject.toml), as the report prints it before KEPT or BROKEN
LAYERS, NO_AIRFLOW, NO_CYCLE = "spec > model", "no AWS SDK", "of any package"


def _lint(tmp_path: Path, plant: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts on a copy of the package (`plant`: file, line to add)."""
    copy = tmp_path / "provider"
    shutil.copytree(
        REPO_ROOT / "provider" / "handsoff", copy / "handsoff", ignore=shutil.ignore_patterns("*.pyc")
    )
    if plant is not None:
        module, line = plant
        path = copy / "handsoff" / module
        path.write_text(path.read_text() + f"\n{line}\n")
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_package_keeps_every_contract(tmp_path):
    done = _lint(tmp_path)

    assert done.returncode == 0, done.stdout
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("plant", "broken"),
    [
        (("operators/deploy.py", "from handsoff.factory import naming"), LAYERS),  # a block reaching up
        (("model/pipeline.py", "from handsoff.store import ledger"), LAYERS),
        (("spec/load.py", "import airflow.sdk"), NO_AIRFLOW),
        (("cli/registry.py", "from handsoff.cli import validate"), NO_CYCLE),  # validate imports it
    ],
)
def test_a_wrong_import_breaks_the_contract_that_forbids_it(tmp_path, plant, broken):
    done = _lint(tmp_path, plant)

    summary = " ".join(done.stdout.split())  # import-linter wraps long contract names
    assert done.returncode != 0
    assert f"{broken} BROKEN" in summary, done.stdout
