"""The `handsoff` console script: the registry, the parser, usage errors, and cheap start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from handsoff.cli.registry import COMMANDS
from support.cli import run
from support.repos import REPO_ROOT


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["validate", "--bogus"], ["render"]])
def test_argparse_usage_errors_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)

    assert (code, out) == (2, "")
    assert err.startswith("usage: handsoff")


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "--help")

    assert code == 0
    assert "validate" in out and "render" in out


def test_commands_are_registered_in_the_table():
    assert {"validate", "render"} <= set(COMMANDS)
    assert COMMANDS["validate"].help.startswith("check pipeline specs")


def test_every_command_is_a_module_of_its_own_that_loads():
    modules = {command.func.partition(":")[0] for command in COMMANDS.values()}

    assert len(modules) == len(COMMANDS)
    assert all(callable(command.load()) for command in COMMANDS.values())


def test_no_cli_module_imports_airflow_when_imported():
    """Airflow (3.5 s, 281 modules) is imported inside the commands that need it, never at module level."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import handsoff.cli\n"
        "for m in pkgutil.iter_modules(handsoff.cli.__path__):\n"
        "    if m.name != '__main__':\n"
        "        importlib.import_module(f'handsoff.cli.{m.name}')\n"
        "leaked = sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'boto3', 'botocore'})\n"
        "assert not leaked, leaked\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "provider")}

    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stderr) == (0, "")
