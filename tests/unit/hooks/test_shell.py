"""Spec commands: values arrive as environment variables; secrets stay out; timeouts kill."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from handsoff.hooks.shell import CommandFailed, handsoff_env, run_command


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


@contextmanager
def _stdin_is_a_socket() -> Iterator[socket.socket]:
    """fd 0 on one end of a socket pair, as in a task process (its supervisor's channel)."""
    ours, theirs = socket.socketpair()
    saved = os.dup(0)
    os.dup2(theirs.fileno(), 0)
    try:
        yield ours
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        ours.close()
        theirs.close()


def test_a_task_s_socket_stdin_neither_reaches_the_command_nor_loads_bashrc(tmp_path, monkeypatch):
    """Under a real task supervisor bash saw a socket on stdin, read ~/.bashrc (PATH rewritten: the
    build ran another python3), and `cat` could read the supervisor's channel. Neither happens now."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("export BASHRC_RAN=yes\nexport PATH=/nowhere:$PATH\n")
    monkeypatch.setenv("HOME", str(home))
    with _stdin_is_a_socket() as supervisor:
        supervisor.sendall(b"supervisor message\n")
        run_command(
            "probe",
            'echo "bashrc=${BASHRC_RAN:-no} path=${PATH%%:*}" > seen; cat > stdin.txt',
            env={},
            cwd=tmp_path,
            timeout=timedelta(seconds=20),
        )
        supervisor.setblocking(False)
        supervisor.sendall(b"still ours\n")  # the channel still works
    assert (tmp_path / "seen").read_text() == f"bashrc=no path={os.environ['PATH'].split(':')[0]}\n"
    assert (tmp_path / "stdin.txt").read_text() == ""
