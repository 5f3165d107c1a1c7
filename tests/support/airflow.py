"""Real Airflow processes for tests: start one, wait for it, stop it by its process id; the REST client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handsoff.hooks.airflow_api import AirflowApi


def airflow_bin() -> str:
    """The `airflow` executable of this interpreter's environment."""
    return str(Path(sys.executable).with_name("airflow"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowProcess:
    """`airflow <args>` in its own process group, output to a log file; a context manager."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> AirflowProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [airflow_bin(), *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; return its exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tail(self, lines: int = 40) -> str:
        """The end of the process log (for assertion messages)."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def api_client(base: str, username: str = "admin", password: str = "admin") -> AirflowApi:
    """handsoff's own REST client, logged in as `username` (it renews an expired token itself)."""
    api = AirflowApi(base, timeout=30)
    api.login(username, password)
    return api


def wait_for_http(url: str, timeout: float, proc: AirflowProcess | None = None) -> None:
    """Wait until `url` answers at all (any HTTP status); fail with the process log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
                raise AssertionError(f"process exited early:\n{proc.tail()}") from None
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout}s\n{proc.tail() if proc else ''}")


def wait_until(what: str, check: Callable[[], Any], timeout: float, proc: AirflowProcess) -> Any:
    """Poll `check` every second until it returns something truthy (returned); fail with the log tail
    when `proc` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.proc.poll() is not None:
            raise AssertionError(f"airflow exited while waiting for {what}:\n{proc.tail()}")
        time.sleep(1)
    raise AssertionError(f"no {what} after {timeout}s:\n{proc.tail()}")


def api_env(port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Airflow processes of a test: API on `port`, admin/admin simple auth."""
    home = Path(os.environ["AIRFLOW_HOME"])
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "admin"}))
    return {
        **os.environ,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        **(extra or {}),
    }
