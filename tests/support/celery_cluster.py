"""Airflow's distributed topology as local processes: private PostgreSQL and Redis, every component.

What docker-compose.yaml runs in containers, without Docker: a PostgreSQL cluster (initdb in a temp
folder, `pg_ctl start` as the `postgres` OS user when we are root: PostgreSQL refuses to run as root)
and a Redis server on free loopback ports, then `airflow db migrate`, the api-server, scheduler,
dag-processor, triggerer and Celery workers, each in its own session and log file. Nothing here uses
a system service. Missing server binaries raise MissingService (the test fails; it never skips).

Workers get distinct TaskInstance hostnames through `[core] hostname_callable` (a one-line module
the cluster writes into its home), as if each ran on its own machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from support.airflow import AirflowProcess

HOSTNAME_ENV = "HANDSOFF_TEST_WORKER_HOSTNAME"
HOSTNAME_MODULE = "handsoff_test_hostname"
INSTALL_HINT = (
    "install Debian's PostgreSQL and Redis servers: `scripts/ci_services.sh install` "
    "(apt-get install -y postgresql redis-server; .ci/run does it)"
)


class MissingService(RuntimeError):
    """A server binary the topology needs is not installed."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, what: str, log: Path | None = None) -> None:
    """Wait until 127.0.0.1:`port` accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s\n{tail}")


def session_pids(sid: int) -> list[int]:
    """Every live process of session `sid` (a process group leader and whatever it forked)."""
    import psutil

    pids = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                pids.append(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return pids


def kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid`, as if its machine died.

    A process group is not enough: Airflow's supervisor puts each task process in a group of its own
    (so that it can killpg the task's children), and that group would outlive the worker's.
    """
    if sid == os.getsid(0):
        raise ValueError("refusing to kill the test's own session")
    for _ in range(20):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _pg_bin(name: str) -> Path:
    """A PostgreSQL server program: on the PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which(name)
    if found:
        return Path(found)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3].split(".")[0])
    )
    if not candidates:
        where = "on the PATH or in /usr/lib/postgresql/*/bin"
        raise MissingService(f"PostgreSQL's `{name}` was not found {where}: {INSTALL_HINT}")
    return candidates[-1]


def _as_postgres() -> list[str]:
    """Command prefix that runs a program as the `postgres` OS user when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise MissingService("running PostgreSQL as root needs `runuser` (util-linux)")
    return [runuser, "-u", "postgres", "--"]


class Postgres:
    """A private PostgreSQL cluster on a free loopback port; database `airflow`, user `airflow` (trust)."""

    def __init__(self) -> None:
        self.port = 0
        self.dir: Path | None = None
        self.started = False

    @property
    def data(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*_as_postgres(), str(_pg_bin(program)), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    @staticmethod
    def binaries() -> None:
        """Raise MissingService unless the server programs are installed."""
        for program in ("initdb", "pg_ctl", "createdb"):
            _pg_bin(program)
        _as_postgres()

    def start(self) -> Postgres:
        self.binaries()
        # Not under pytest's tmp_path: its folders are 0700 root, so the postgres user could not enter.
        self.dir = Path(tempfile.mkdtemp(prefix="handsoff-pg-"))
        if _as_postgres():
            shutil.chown(self.dir, user="postgres", group="postgres")
        self.port = free_port()
        cluster = ("-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
        self._pg("initdb", "-D", str(self.data), *cluster)
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.started = True  # from here on, stop() must run even if start fails half-way
        log = str(self.dir / "postgres.log")
        self._pg("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start")
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "airflow", "airflow")
        return self

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    @property
    def celery_url(self) -> str:
        return f"db+postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def stop(self) -> None:
        """`pg_ctl stop` (fast, then immediate), then remove the cluster's folder."""
        if self.dir is None:
            return
        pidfile = self.data / "postmaster.pid"
        if self.started and pidfile.exists():
            for mode in ("fast", "immediate"):
                stop = ("-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
                if self._pg("pg_ctl", *stop, check=False).returncode == 0:
                    break
            else:  # last resort: the postmaster's pid is the file's first line
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


class Redis:
    """A private Redis server on a free loopback port, no persistence, in its own session."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def binary() -> str:
        server = shutil.which("redis-server")
        if server is None:
            raise MissingService(f"`redis-server` was not found on the PATH: {INSTALL_HINT}")
        return server

    def start(self) -> Redis:
        server = self.binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log = self.workdir / "redis.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                + ["--daemonize", "no", "--dir", str(self.workdir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(self.port, 30, "redis-server", log)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Cluster:
    """PostgreSQL, Redis and Airflow's components (CeleryExecutor) as processes; a context manager.

    `env` holds the test's own settings (specs folder, AWS connection, ...); the cluster adds the
    database, broker, API and executor settings. `stop()` ends everything that was started, even after
    a failed start: every Airflow process's whole session, then Redis, then PostgreSQL.
    """

    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(self, home: Path, env: dict[str, str], workers: tuple[str, ...] = ("worker-a", "worker-b")):
        self.home = home
        self.logs = home / "process-logs"
        self.extra_env = env
        self.worker_names = workers
        self.postgres = Postgres()
        self.redis = Redis(home / "redis")
        self.procs: dict[str, AirflowProcess] = {}
        self.env: dict[str, str] = {}
        self.port = 0
        self.startup_s = 0.0

    def __enter__(self) -> Cluster:
        started = time.monotonic()
        try:
            self.start()
            self.startup_s = time.monotonic() - started
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from support.airflow import AirflowProcess, wait_for_http

        Postgres.binaries()  # before starting anything: a missing server is named at once
        Redis.binary()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.redis.start()
        self.port = free_port()
        self.env = self._airflow_env()
        migrate = subprocess.run(
            [_airflow(), "db", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if migrate.returncode != 0:
            output = (migrate.stdout + migrate.stderr)[-4000:]
            raise RuntimeError(f"airflow db migrate failed:\n{output}")
        for name in self.COMPONENTS:
            args = [name, "--port", str(self.port)] if name == "api-server" else [name]
            self.procs[name] = AirflowProcess(args, self.env, self.logs / f"{name}.log").__enter__()
        pythonpath = self.home / "pythonpath"
        pythonpath.mkdir(exist_ok=True)
        (pythonpath / f"{HOSTNAME_MODULE}.py").write_text(
            f"import os\n\n\ndef hostname():\n    return os.environ[{HOSTNAME_ENV!r}]\n"
        )
        for name in self.worker_names:
            env = {
                **self.env,
                HOSTNAME_ENV: name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{HOSTNAME_MODULE}.hostname",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")])),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
            args = ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "1"]
            args += ["--pid", str(self.home / f"{name}.pid")]
            self.procs[name] = AirflowProcess(args, env, self.logs / f"{name}.log").__enter__()
        wait_for_http(f"{self.url}/api/v2/monitor/health", timeout=180, proc=self.procs["api-server"])
        for name in self.worker_names:
            self.wait_for_log(name, f"{name}@", "ready.", timeout=180)

    def _airflow_env(self) -> dict[str, str]:
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        passwords.write_text(json.dumps({"admin": "admin"}))
        return {
            **os.environ,
            **self.extra_env,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": self.postgres.celery_url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            # other test runs on this machine may hold Airflow's default log-server ports
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, name: str) -> str:
        """The whole log of process `name`."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_for_log(self, name: str, *needles: str, timeout: float) -> None:
        """Wait until one line of process `name`'s log holds every needle; fail if the process exits."""
        proc = self.procs[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(all(n in line for n in needles) for line in self.log(name).splitlines()):
                return
            if proc.proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{proc.tail()}")
            time.sleep(0.5)
        raise RuntimeError(f"{name}: no line with {needles} within {timeout}s\n{proc.tail()}")

    def kill(self, name: str) -> None:
        """SIGKILL process `name` and everything it started (its whole session): a lost machine."""
        kill_session(self.procs[name].proc.pid)
        self.procs[name].proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM every Airflow process group, wait up to 30 s, SIGKILL their sessions; then the servers."""
        try:
            running = [p for p in self.procs.values() if p.proc is not None and p.proc.poll() is None]
            for proc in running:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            for proc in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            for proc in self.procs.values():
                if proc.proc is not None:
                    kill_session(proc.proc.pid)
                    proc.proc.poll()
        finally:
            try:
                self.redis.stop()
            finally:
                self.postgres.stop()


def _airflow() -> str:
    from support.airflow import airflow_bin

    return airflow_bin()
