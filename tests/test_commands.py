"""Spec commands: values arrive as environment variables; secrets stay out; timeouts kill."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from handsoff.commands import CommandFailed, handsoff_env, run_command


def test_runtime_values_reach_the_command_only_as_environment(tmp_path: Path):
    hostile = "$(touch pwned); `touch pwned2`\nrm -rf ~"
    env = handsoff_env(commit=hostile)

    run_command("echo", 'printf %s "$HANDSOFF_COMMIT" > seen', env=env, cwd=tmp_path)

    assert (tmp_path / "seen").read_text() == hostile
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_airflow_and_aws_variables_are_withheld(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://AKIA:secret@")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("TEAM_SETTING", "kept")

    run_command("env", "env > env.txt", env={}, cwd=tmp_path)

    seen = (tmp_path / "env.txt").read_text()
    assert "secret" not in seen
    assert "TEAM_SETTING=kept" in seen


def test_failure_and_timeout_name_the_step(tmp_path: Path):
    with pytest.raises(CommandFailed, match="build step compile: exited with code 3"):
        run_command("build step compile", "exit 3", env={}, cwd=tmp_path)
    with pytest.raises(CommandFailed, match="deploy of target t1: timed out after 1s"):
        run_command("deploy of target t1", "sleep 30", env={}, cwd=tmp_path, timeout=timedelta(seconds=1))
