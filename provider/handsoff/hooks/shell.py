"""Running the spec's shell commands: environment variables in, never pasted into the command.

Commands get the worker's environment minus anything starting with AIRFLOW_ or AWS_ (connections,
secret keys, credentials), plus the HANDSOFF_* variables of the run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from airflow.providers.standard.hooks.subprocess import SubprocessHook

_WITHHELD_PREFIXES = ("AIRFLOW_", "AWS_", "_AIRFLOW")
_TIMEOUT_EXIT = 124
# A task's stdin is the socket to Airflow's task supervisor. Seeing a socket there, bash takes itself for
# an ssh session and reads ~/.bashrc (which may rewrite PATH); --norc stops that. The command reads
# /dev/null instead of the supervisor's socket.
_BASH_OPTIONS = ("--noprofile", "--norc")
_NO_STDIN = "exec </dev/null; "


class CommandFailed(RuntimeError):
    """A spec command exited non-zero or timed out."""


def base_env() -> dict[str, str]:
    """The worker's environment with Airflow and AWS variables withheld."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_WITHHELD_PREFIXES)}


def handsoff_env(**values: str | int | None) -> dict[str, str]:
    """HANDSOFF_<NAME> variables from keyword arguments (None → empty string)."""
    return {f"HANDSOFF_{k.upper()}": "" if v is None else str(v) for k, v in values.items()}


def target_env(fields: Mapping[str, str]) -> dict[str, str]:
    """HANDSOFF_TARGET_<FIELD> for every field of a target, plus HANDSOFF_TARGET (its name)."""
    env = {f"HANDSOFF_TARGET_{k.upper()}": str(v) for k, v in fields.items()}
    env["HANDSOFF_TARGET"] = str(fields.get("name", ""))
    return env


def run_command(
    label: str,
    command: str,
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: timedelta | None = None,
) -> str:
    """Run `command` with bash in `cwd`; raise CommandFailed naming `label` unless it exits 0.

    Returns the last line of output. A timeout kills the command's process group (coreutils `timeout`).
    """
    argv = ["bash", *_BASH_OPTIONS, "-c", _NO_STDIN + command]
    if timeout is not None:
        seconds = int(timeout.total_seconds())
        argv = ["timeout", "--kill-after=10", str(seconds), *argv]
    result = SubprocessHook().run_command(command=argv, env={**base_env(), **env}, cwd=str(cwd))
    if timeout is not None and result.exit_code == _TIMEOUT_EXIT:
        raise CommandFailed(f"{label}: timed out after {int(timeout.total_seconds())}s")
    if result.exit_code != 0:
        raise CommandFailed(f"{label}: exited with code {result.exit_code}")
    return result.output
