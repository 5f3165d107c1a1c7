"""A throwaway `airflow standalone` for a benchmark: its own AIRFLOW_HOME and port, stopped by process group.

LocalExecutor, SQLite, SimpleAuthManager with admin/admin; everything it starts (scheduler, DAG processor,
triggerer, API server, task processes) is in one process group, which ``stop`` (or leaving the ``with``
block, also on failure) ends.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import VENV_BIN, Group, say

HEALTH_TIMEOUT_S = 180
#: SQLite waits up to this long for a lock (its default is 5 s). With 5 s, 100 runs triggered at once make
#: the scheduler and triggerer of `airflow standalone` exit on "database is locked".
SQLITE_LOCK_WAIT_S = 20
#: Seconds a task's supervisor waits for the Execution API (default 5; Airflow's advice under high load is to
#: raise it): with 100 pipelines starting on 2 cores, the API server answers slower than 5 s.
EXECUTION_API_TIMEOUT_S = 60


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens there, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API server binds
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


class Standalone:
    """``with Standalone(home, dags, port, env) as af:`` → af.api is a logged-in REST client."""

    def __init__(
        self,
        home: Path,
        dags: Path,
        port: int,
        extra_env: dict[str, str] | None = None,
        db_url: str | None = None,
    ) -> None:
        """`db_url`: SQLAlchemy URL of the metadata DB (default: SQLite in `home`, as standalone makes it)."""
        self.home, self.dags, self.port = home, dags, free_port(port)
        self.extra_env = extra_env or {}
        self.db_url = db_url
        self.group: Group | None = None
        self.api: Api | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        if self.db_url:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.db_url
        else:
            path = self.home / "pythonpath"
            env.update(
                PYTHONPATH=os.pathsep.join(p for p in (str(path), env.get("PYTHONPATH", "")) if p),
                AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="bench_sqlite_args.CONNECT_ARGS",
            )
        env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] = str(EXECUTION_API_TIMEOUT_S)
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.port}/execution/",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        env.update(self.extra_env)
        return env

    def __enter__(self) -> Standalone:
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({"admin": "admin"})
        )
        (self.home / "pythonpath").mkdir()
        (self.home / "pythonpath" / "bench_sqlite_args.py").write_text(
            f"CONNECT_ARGS = {{'timeout': {SQLITE_LOCK_WAIT_S}}}\n"
        )
        if not self.db_url:
            self._migrate_with_wal()
        self.group = Group(
            [str(VENV_BIN / "airflow"), "standalone"], self.env(), self.home / "standalone.log"
        )
        self.group.__enter__()
        say(f"airflow standalone on port {self.port} (process group {self.group.pid}, home {self.home})")
        try:
            self._wait_healthy()
        except BaseException:
            self.group.__exit__(None, None, None)
            raise
        return self

    def _migrate_with_wal(self) -> None:
        """Create the SQLite DB and switch it to write-ahead logging (readers stop blocking the writer).

        With SQLite's default journal, 100 runs at once make the scheduler and the triggerer exit on
        "database is locked"; WAL (a property of the file, kept across connections) avoids that.
        """
        migrate = subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"], env=self.env(), capture_output=True, text=True
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stderr[-2000:]}")
        with sqlite3.connect(self.home / "airflow.db") as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        say(f"metadata DB migrated, journal mode {mode}")

    def __exit__(self, *exc: object) -> None:
        if self.group is not None:
            self.group.__exit__(*exc)

    def _wait_healthy(self) -> None:
        assert self.group is not None
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.group.alive():
                raise RuntimeError(f"airflow standalone exited:\n{self.group.tail()}")
            status, body = request("GET", base + "/api/v2/monitor/health")
            if status == 200 and all(
                (body.get(part) or {}).get("status") == "healthy"
                for part in ("scheduler", "triggerer", "dag_processor")
            ):
                self.api = Api(base)
                return
            time.sleep(1)
        raise RuntimeError(f"airflow standalone not healthy after {HEALTH_TIMEOUT_S}s:\n{self.group.tail()}")

    def wait_for_dags(self, dag_ids: set[str], timeout: float) -> float:
        """Wait until every DAG of `dag_ids` is known to the API; seconds it took."""
        assert self.api is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if dag_ids <= set(self.api.all_dag_ids()):
                return time.monotonic() - started
            time.sleep(2)
        missing = dag_ids - set(self.api.all_dag_ids())
        raise RuntimeError(
            f"DAGs not loaded after {timeout}s: {sorted(missing)[:5]} ({len(missing)} missing)"
        )


def request(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """One HTTP request with a JSON body; (status, parsed JSON). Connection errors give status 0."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw or b"null")
        except ValueError:
            return err.code, raw.decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


class Api:
    """The REST API with a JWT from /auth/token (renewed on 401)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""
        self.login()

    def login(self) -> None:
        status, body = request("POST", self.base + "/auth/token", {"username": "admin", "password": "admin"})
        if status not in (200, 201):
            raise RuntimeError(f"POST /auth/token answered {status}: {body}")
        self.token = body["access_token"]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, answer = request(method, self.base + path, body, self.token)
        if status == 401:
            self.login()
            status, answer = request(method, self.base + path, body, self.token)
        return status, answer

    def get(self, path: str) -> Any:
        for attempt in range(5):  # SQLite may be busy under load (500)
            status, body = self.call("GET", path)
            if status == 200:
                return body
            if status not in (0, 500, 503):
                break
            time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"GET {path} answered {status}: {body}")

    def pages(self, path: str, key: str, limit: int = 100) -> Iterator[dict[str, Any]]:
        offset = 0
        sep = "&" if "?" in path else "?"
        while True:
            body = self.get(f"{path}{sep}limit={limit}&offset={offset}")
            yield from body[key]
            offset += len(body[key])
            if not body[key] or offset >= body["total_entries"]:
                return

    def all_dag_ids(self) -> list[str]:
        return [dag["dag_id"] for dag in self.pages("/api/v2/dags", "dags")]

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        """Create the run; retried while SQLite is busy (500), and a 409 after a retry means it exists."""
        body = {"logical_date": None, "dag_run_id": run_id, "conf": conf or {}}
        for attempt in range(8):
            status, answer = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
            if status == 200 or (status == 409 and attempt > 0):
                return
            if status not in (0, 500, 503):
                break
            time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"could not trigger {dag_id}: {status} {answer}")

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.pages(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances"))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(1)
        raise RuntimeError(f"run {dag_id}/{run_id} not finished after {timeout}s")
