"""`make demo`: run the greeter-app pipeline once on a local Airflow, no Docker.

Creates a git repo of examples/greeter under .demo/git, starts `airflow standalone` in the
background (.demo/airflow.log, .demo/airflow.pid), installs the handsoff git hook in the repo, then
pushes a commit: the push itself triggers greeter-app (run merge-<sha12>), and the demo follows that run
to the end. Airflow stays up afterwards so that you can look at the UI; `make demo-stop` (this script
with --stop) stops it.

Standard library only: it must run before anything else is known to work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
AIRFLOW_HOME = DEMO / "airflow"
BARE_REPO = DEMO / "git" / "greeter.git"
WORK_REPO = DEMO / "git" / "greeter-work"
FLEET = DEMO / "fleet"
LOG_FILE = DEMO / "airflow.log"
PID_FILE = DEMO / "airflow.pid"
EXAMPLE = REPO / "examples" / "greeter"
VENV_BIN = REPO / ".venv" / "bin"

DAG_ID = "greeter-app"
USERNAME = PASSWORD = "admin"
HEALTH_TIMEOUT_S = 120
DAG_TIMEOUT_S = 180
RUN_TIMEOUT_S = 600
HOOK_RUN_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20
GIT_CONFIG = {"user.name": "handsoff demo", "user.email": "demo@example.com", "commit.gpgsign": "false"}
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "dist", ".coverage", "coverage.json")

STARTED = time.monotonic()


class DemoError(RuntimeError):
    """A step failed; the message says what to do."""


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


# --- (a) environment -------------------------------------------------------------------------


def demo_port() -> int:
    return int(os.environ.get("DEMO_PORT", "8080"))


def airflow_env(port: int) -> dict[str, str]:
    """The environment of `airflow standalone`: inherited AIRFLOW* settings dropped, demo ones set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(AIRFLOW_HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USERNAME}:admin",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        HANDSOFF_SPECS_DIR=str(REPO / "pipeline_specs"),
        GREETER_FLEET_DIR=str(FLEET),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    if port != 8080:
        env["AIRFLOW__API__PORT"] = str(port)
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{port}/execution/"
    return env


def seed_password_file() -> None:
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    path = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    path.write_text(json.dumps({USERNAME: PASSWORD}))


# --- (b) the greeter git repo ----------------------------------------------------------------


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise DemoError(f"git {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def prepare_greeter_repo() -> bool:
    """Create the bare repo and its work clone when missing; True when the repo is new."""
    if shutil.which("git") is None:
        raise DemoError("git is not installed")
    first = not BARE_REPO.exists()
    if first:
        shutil.rmtree(WORK_REPO, ignore_errors=True)  # a clone of a bare repo that is gone
        BARE_REPO.parent.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "--bare", "-b", "main", str(BARE_REPO))
    if not WORK_REPO.exists():
        git("clone", "-q", str(BARE_REPO), str(WORK_REPO))
        git("checkout", "-q", "-B", "main", cwd=WORK_REPO)
    for key, value in GIT_CONFIG.items():
        git("config", key, value, cwd=WORK_REPO)
    return first or not git("branch", "--list", "main", cwd=WORK_REPO)


def install_hook(port: int) -> None:
    """`handsoff git-hook install`: the bare repo's post-receive triggers the pipelines of main."""
    env = {**os.environ, "HANDSOFF_AIRFLOW_PASSWORD": PASSWORD}
    command = [str(VENV_BIN / "handsoff"), "git-hook", "install", str(BARE_REPO)]
    command += ["--specs", str(REPO / "pipeline_specs"), "--url", f"http://localhost:{port}"]
    result = subprocess.run([*command, "--username", USERNAME], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise DemoError(f"could not install the git hook: {result.stderr.strip()}")
    for line in result.stdout.splitlines():
        say(line.strip())


def commit_and_push(first: bool) -> str:
    """Commit examples/greeter (plus a CHANGELOG line on later runs) and push it: the hook triggers."""
    shutil.copytree(EXAMPLE, WORK_REPO, dirs_exist_ok=True, ignore=COPY_IGNORE)
    if not first:
        with (WORK_REPO / "CHANGELOG").open("a", encoding="utf-8") as changelog:
            changelog.write(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} demo change\n")
    git("add", "-A", cwd=WORK_REPO)
    git("commit", "-q", "-m", "greeter: import" if first else "greeter: demo change", cwd=WORK_REPO)
    push = subprocess.run(
        ["git", "push", "-q", "origin", "main"], cwd=WORK_REPO, capture_output=True, text=True
    )
    for line in push.stderr.splitlines():  # the hook's output comes back as "remote: ..."
        if line.strip():
            say(f"  git push: {line.strip()}")
    if push.returncode != 0:
        raise DemoError(f"git push failed (exit {push.returncode})")
    return git("rev-parse", "HEAD", cwd=WORK_REPO)


# --- (c) starting and stopping Airflow -------------------------------------------------------


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ensure_port_free(port: int) -> None:
    if port_in_use(port):
        raise DemoError(
            f"something already listens on port {port}: a demo still running? Stop it with "
            "`make demo-stop`, or pick another port: DEMO_PORT=8081 make demo"
        )


def start_airflow(port: int) -> subprocess.Popen[bytes]:
    airflow = VENV_BIN / "airflow"
    if not airflow.exists():
        raise DemoError(f"{airflow} not found: run `make venv` first")
    seed_password_file()
    with LOG_FILE.open("ab") as log:
        process = subprocess.Popen(
            [str(airflow), "standalone"],
            cwd=REPO,
            env=airflow_env(port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PID_FILE.write_text(f"{process.pid}\n")
    return process


def group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies waiting to be reaped do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            return True
    return False


def is_demo_airflow(pid: int) -> bool:
    """Guards against a recycled pid: the group leader must still be our airflow command."""
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (macOS), or the leader is gone but its group is not: trust the pid file
    try:  # comm: a zombie leader has an empty cmdline but keeps its name
        return "airflow" in (proc / "comm").read_text() or b"airflow" in (proc / "cmdline").read_bytes()
    except OSError:
        return True


def stop_group(pgid: int) -> str:
    """SIGTERM the process group, SIGKILL it after STOP_TIMEOUT_S; say how it ended."""
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return "stopped with SIGTERM"
        time.sleep(0.5)
    os.killpg(pgid, signal.SIGKILL)
    return f"killed with SIGKILL after {STOP_TIMEOUT_S}s"


def stop_demo() -> int:
    if not PID_FILE.exists():
        print(f"No demo Airflow to stop ({PID_FILE.relative_to(REPO)} does not exist).")
        return 0
    pid = int(PID_FILE.read_text().strip())
    if not group_alive(pid):
        print(f"Airflow process group {pid} had already ended.")
    elif not is_demo_airflow(pid):
        print(f"Process {pid} is not the demo's airflow any more; leaving it alone.")
    else:
        print(f"Airflow standalone (process group {pid}): {stop_group(pid)}.")
    PID_FILE.unlink()
    return 0


# --- (d) the REST API ------------------------------------------------------------------------


class Api:
    def __init__(self, port: int) -> None:
        self.base = f"http://localhost:{port}"
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON or None). Connection errors give status 0."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, parse_json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, parse_json(error.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None

    def login(self) -> None:
        status, body = self.call("POST", "/auth/token", {"username": USERNAME, "password": PASSWORD})
        if status != 201:
            raise DemoError(f"POST /auth/token answered {status}: {body}")
        self.token = body["access_token"]


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def log_tail(lines: int = 30) -> str:
    if not LOG_FILE.exists():
        return ""
    return "\n".join(LOG_FILE.read_text(errors="replace").splitlines()[-lines:])


def wait_for_health(api: Api, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"airflow standalone exited with code {process.returncode}:\n{log_tail()}")
        if api.call("GET", "/api/v2/monitor/health")[0] == 200:
            return
        time.sleep(1)
    raise DemoError(f"Airflow not healthy after {HEALTH_TIMEOUT_S}s; end of {LOG_FILE}:\n{log_tail()}")


def wait_for_dag(api: Api) -> None:
    deadline = time.monotonic() + DAG_TIMEOUT_S
    while time.monotonic() < deadline:
        if api.call("GET", f"/api/v2/dags/{DAG_ID}")[0] == 200:
            return
        time.sleep(2)
    _, errors = api.call("GET", "/api/v2/importErrors")
    details = json.dumps(errors, indent=2) if errors else "(none)"
    raise DemoError(f"DAG {DAG_ID} did not appear after {DAG_TIMEOUT_S}s. Import errors: {details}")


def unpause(api: Api) -> None:
    """Unpause greeter-app before the push, so that the run the hook creates starts at once."""
    status, body = api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    if status != 200:
        raise DemoError(f"could not unpause {DAG_ID}: {status} {body}")


def wait_for_hook_run(api: Api, sha: str) -> str:
    """The run the git hook created for `sha` (merge-<sha12>); the demo does not trigger it itself."""
    run_id = f"merge-{sha[:12]}"
    deadline = time.monotonic() + HOOK_RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")[0] == 200:
            return run_id
        time.sleep(1)
    raise DemoError(
        f"the push did not create run {run_id} of {DAG_ID} within {HOOK_RUN_TIMEOUT_S}s: "
        f"see the hook's output above (git push: remote: handsoff: ...)"
    )


def task_instances(api: Api, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100&offset={len(found)}"
        status, body = api.call("GET", path)
        if status != 200:
            raise DemoError(f"GET {path} answered {status}: {body}")
        found.extend(body["task_instances"])
        if not body["task_instances"] or len(found) >= body["total_entries"]:
            return found


def state_counts(instances: list[dict[str, Any]]) -> str:
    counts = Counter(ti["state"] or "none" for ti in instances)
    return ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))


def wait_for_run(api: Api, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    last_summary, last_print, state = "", 0.0, None
    while time.monotonic() < deadline:
        status, body = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        if status == 401:
            api.login()
            continue
        state = body.get("state") if status == 200 else None
        if state in ("success", "failed"):
            return state
        summary = state_counts(task_instances(api, run_id)) if status == 200 else ""
        if summary and summary != last_summary and time.monotonic() - last_print >= 5:
            say(f"run {state}: {summary}")
            last_summary, last_print = summary, time.monotonic()
        time.sleep(2)
    raise DemoError(f"run {run_id} not finished after {RUN_TIMEOUT_S}s (still {state})")


# --- results ---------------------------------------------------------------------------------


def print_fleet() -> None:
    for pipeline_dir in sorted(p for p in FLEET.glob("*") if p.is_dir()):
        versions = [
            f"{version.parent.name}={version.read_text().strip()[:12]}"
            for version in sorted(pipeline_dir.glob("*/VERSION"))
        ]
        print(f"  fleet {pipeline_dir.name}: {' '.join(versions) or '(no target deployed)'}")


def report_failure(api: Api, run_id: str, instances: list[dict[str, Any]], port: int) -> None:
    failed = sorted(
        ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else "")
        for ti in instances
        if ti["state"] in ("failed", "upstream_failed")
    )
    print(f"Run {run_id} FAILED. Failed tasks: {', '.join(failed) or '(none reported)'}")
    print(f"  task logs: http://localhost:{port}/dags/{DAG_ID}/runs/{run_id} or {AIRFLOW_HOME / 'logs'}")
    print(f"  Airflow's own log: {LOG_FILE}")
    print("  Airflow is still running; stop with: make demo-stop")


def print_status() -> None:
    """`handsoff status greeter-app`: what every target runs now, from the ledger."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "HANDSOFF_SPECS_DIR": str(REPO / "pipeline_specs"),
    }
    result = subprocess.run(
        [str(VENV_BIN / "handsoff"), "status", DAG_ID], env=env, capture_output=True, text=True
    )
    print((result.stdout or result.stderr).rstrip())


def run_demo() -> int:
    port = demo_port()
    ensure_port_free(port)
    DEMO.mkdir(exist_ok=True)
    say(f"AIRFLOW_HOME={AIRFLOW_HOME}, specs {REPO / 'pipeline_specs'}, fleet {FLEET}, port {port}")
    first = prepare_greeter_repo()
    process = start_airflow(port)
    say(f"started airflow standalone (pid {process.pid}, log {LOG_FILE.relative_to(REPO)})")
    api = Api(port)
    try:
        wait_for_health(api, process)
    except DemoError:
        stop_demo()
        raise
    say("Airflow is healthy")
    api.login()
    wait_for_dag(api)
    say(f"DAG {DAG_ID} is loaded")
    unpause(api)
    install_hook(port)
    sha = commit_and_push(first)
    say(f"pushed greeter commit {sha[:12]} to {BARE_REPO.relative_to(REPO)} (branch main)")
    run_id = wait_for_hook_run(api, sha)
    say(f"the push triggered run {run_id} (conf commit={sha[:12]}); waiting for it to finish")
    state = wait_for_run(api, run_id)
    instances = task_instances(api, run_id)
    say(f"run {run_id}: {state}; task instances: {state_counts(instances)}")
    print_fleet()
    if state != "success":
        report_failure(api, run_id, instances, port)
        return 1
    print(f"First successful run {time.monotonic() - STARTED:.0f}s after `make demo` started.")
    print_status()
    print(f"UI: http://localhost:{port}  (login {USERNAME} / {PASSWORD})")
    print(
        f"Deploy again: commit in {WORK_REPO.relative_to(REPO)} and `git push` (the hook triggers the run).\n"
        f"What runs where: AIRFLOW_HOME={AIRFLOW_HOME.relative_to(REPO)} "
        f".venv/bin/handsoff status {DAG_ID}   (--json for machines)"
    )
    print("Airflow keeps running; stop with: make demo-stop")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop", action="store_true", help="stop the demo's Airflow")
    args = parser.parse_args(argv)
    if args.stop:
        return stop_demo()
    try:
        return run_demo()
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        if PID_FILE.exists():
            print("Airflow is still running; stop with: make demo-stop", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; Airflow is still running; stop with: make demo-stop", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
