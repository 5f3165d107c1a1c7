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
from pathlib import Path
from typing import Any

from common import VENV_BIN, Group, say
from handsoff.hooks.airflow_api import AirflowApi, AirflowApiError, AirflowUnreachable

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
            try:
                body = AirflowApi(base).get_or_none("/api/v2/monitor/health")
            except AirflowUnreachable:
                body = None
            if body and all(
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


class Api(AirflowApi):
    """handsoff's REST client logged in as admin, patient while SQLite is busy (500) under load."""

    def __init__(self, base: str) -> None:
        super().__init__(base, timeout=30)
        self.login("admin", "admin")

    def get(self, path: str) -> Any:
        for attempt in range(5):
            try:
                return super().get(path)
            except AirflowApiError as err:
                if err.status not in (0, 500, 503) or attempt == 4:
                    raise
            time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def all_dag_ids(self) -> list[str]:
        return [dag["dag_id"] for dag in self.pages("/api/v2/dags", "dags")]

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        """Create the run; retried while SQLite is busy (500): the run id makes a retry harmless."""
        for attempt in range(4):
            try:
                self.trigger_dag_run(dag_id, run_id, conf or {})
                return
            except AirflowApiError as err:
                if err.status not in (0, 500, 503) or attempt == 3:
                    raise
            time.sleep(0.5 * (attempt + 1))

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(1)
        raise RuntimeError(f"run {dag_id}/{run_id} not finished after {timeout}s")
