"""`make demo`: the example pipelines on a local Airflow and a local AWS stand-in, no Docker.

Starts from an empty .demo/: a moto server on 127.0.0.1 (the AWS endpoint; .demo/moto.log) with the
Lambda functions and CloudWatch alarms of the Lambda pipelines (scripts/demo_aws.py), then `airflow
standalone` (SQLite; .demo/airflow.log) with the specs of pipeline_specs/ and the `aws_default`
connection pointing at moto. It makes a git repo of examples/greeter under .demo/git, installs the
handsoff git hook in it and pushes a commit: the push itself triggers greeter-app and greeter-lambda
(runs merge-<sha12>). The demo follows both runs, then keeps everything running until Ctrl-C (or
`make demo-stop` from another terminal), which stops every process it started.

    demo.py                 # start (fresh .demo/), follow the first runs, wait for Ctrl-C
    demo.py --detach        # the same, but return after the first runs and leave everything running
    demo.py --alarm TARGET  # set TARGET's rollback alarm to ALARM and push a change: see a rollback
    demo.py --ok TARGET     # set it back to OK
    demo.py --push          # push a change (every pipeline of the repo runs again)
    demo.py --stop          # stop Airflow and moto

Standard library only (demo_aws.py runs in the venv): it must run before anything else is known to work.
The REST client is handsoff's own (`handsoff.hooks.airflow_api`, standard library only too).
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
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "provider"))  # handsoff's REST client: standard library only, like this script
from handsoff.hooks.airflow_api import AirflowApi, AirflowApiError, AirflowUnreachable  # noqa: E402

DEMO = REPO / ".demo"
AIRFLOW_HOME = DEMO / "airflow"
BARE_REPO = DEMO / "git" / "greeter.git"
WORK_REPO = DEMO / "git" / "greeter-work"
FLEET = DEMO / "fleet"
LOG_FILE = DEMO / "airflow.log"
PID_FILE = DEMO / "airflow.pid"
MOTO_LOG_FILE = DEMO / "moto.log"
MOTO_PID_FILE = DEMO / "moto.pid"
PORTS_FILE = DEMO / "ports.json"
EXAMPLE = REPO / "examples" / "greeter"
VENV_BIN = REPO / ".venv" / "bin"

DAG_ID = "greeter-app"
LAMBDA_DAG_ID = "greeter-lambda"
DEMO_DAG_IDS = (DAG_ID, LAMBDA_DAG_ID)
USERNAME = PASSWORD = "admin"
HEALTH_TIMEOUT_S = 120
DAG_TIMEOUT_S = 180
RUN_TIMEOUT_S = 600
HOOK_RUN_TIMEOUT_S = 30
MOTO_TIMEOUT_S = 30
WATCH_POLL_S = 5
STOP_TIMEOUT_S = 20
GIT_CONFIG = {"user.name": "handsoff demo", "user.email": "demo@example.com", "commit.gpgsign": "false"}
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "dist", ".coverage", "coverage.json")

STARTED = time.monotonic()
#: set once the first runs are done: a Ctrl-C after that is the normal way to end the demo (exit 0)
FOLLOWING = {"done": False}


class DemoError(RuntimeError):
    """A step failed; the message says what to do."""


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


# --- (a) environment -------------------------------------------------------------------------


def demo_port() -> int:
    return int(os.environ.get("DEMO_PORT", "8080"))


def moto_port() -> int:
    return int(os.environ.get("DEMO_MOTO_PORT", "5055"))


def moto_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def aws_connection(port: int) -> str:
    """`aws_default` of the demo: moto's endpoint and its dummy keys (moto accepts any)."""
    extra = {"region_name": "us-east-1", "endpoint_url": moto_url(port)}
    return json.dumps({"conn_type": "aws", "login": "demo", "password": "demo-secret", "extra": extra})


def airflow_env(port: int, aws_port: int) -> dict[str, str]:
    """The environment of `airflow standalone`: inherited AIRFLOW*/AWS* settings dropped, demo ones set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    env.update(
        AIRFLOW_HOME=str(AIRFLOW_HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USERNAME}:admin",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        HANDSOFF_SPECS_DIR=str(REPO / "pipeline_specs"),
        GREETER_FLEET_DIR=str(FLEET),
        AIRFLOW_CONN_AWS_DEFAULT=aws_connection(aws_port),
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


def prepare_greeter_repo() -> None:
    """Create the (empty) bare repo and its work clone."""
    if shutil.which("git") is None:
        raise DemoError("git is not installed")
    BARE_REPO.parent.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", "-b", "main", str(BARE_REPO))
    git("clone", "-q", str(BARE_REPO), str(WORK_REPO))
    git("checkout", "-q", "-B", "main", cwd=WORK_REPO)
    for key, value in GIT_CONFIG.items():
        git("config", key, value, cwd=WORK_REPO)


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


# --- (c) starting and stopping the demo's processes -----------------------------------------


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ensure_ports_free(port: int, aws_port: int) -> None:
    for number, variable in ((port, "DEMO_PORT"), (aws_port, "DEMO_MOTO_PORT")):
        if port_in_use(number):
            raise DemoError(
                f"something already listens on port {number}: a demo still running? Stop it with "
                f"`make demo-stop`, or pick another port: {variable}={number + 1} make demo"
            )


def start_process(
    command: list[str], env: dict[str, str], log_file: Path, pid_file: Path
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session (so its whole group can be stopped); record its pid."""
    if not Path(command[0]).exists():
        raise DemoError(f"{command[0]} not found: run `make venv` first")
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    return process


def start_moto(aws_port: int) -> subprocess.Popen[bytes]:
    """moto's server on 127.0.0.1 only: the demo's AWS."""
    command = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(aws_port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return start_process(command, env, MOTO_LOG_FILE, MOTO_PID_FILE)


def wait_for_moto(aws_port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + MOTO_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"moto_server exited with code {process.returncode}:\n{log_tail(MOTO_LOG_FILE)}")
        if port_in_use(aws_port):
            return
        time.sleep(0.3)
    raise DemoError(f"moto_server not listening after {MOTO_TIMEOUT_S}s:\n{log_tail(MOTO_LOG_FILE)}")


def demo_aws(*args: str) -> str:
    """scripts/demo_aws.py (boto3, in the venv) against the demo's moto server."""
    endpoint = moto_url(read_ports()["moto"])
    command = [str(VENV_BIN / "python"), str(REPO / "scripts" / "demo_aws.py"), *args, "--endpoint", endpoint]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise DemoError(f"demo_aws.py {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
    return result.stdout.rstrip()


def start_airflow(port: int, aws_port: int) -> subprocess.Popen[bytes]:
    seed_password_file()
    command = [str(VENV_BIN / "airflow"), "standalone"]
    return start_process(command, airflow_env(port, aws_port), LOG_FILE, PID_FILE)


def write_ports(port: int, aws_port: int) -> None:
    PORTS_FILE.write_text(json.dumps({"airflow": port, "moto": aws_port}))


def read_ports() -> dict[str, int]:
    if not PORTS_FILE.exists():
        raise DemoError("no demo is set up: run `make demo` first")
    return json.loads(PORTS_FILE.read_text())


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


def is_ours(pid: int, name: str) -> bool:
    """Guards against a recycled pid: the group leader must still be our `name` command."""
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (macOS), or the leader is gone but its group is not: trust the pid file
    try:  # comm: a zombie leader has an empty cmdline but keeps its name
        return name in (proc / "comm").read_text() or name.encode() in (proc / "cmdline").read_bytes()
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


DEMO_PROCESSES = (("Airflow standalone", PID_FILE, "airflow"), ("moto server", MOTO_PID_FILE, "moto"))


def running_demo() -> list[str]:
    """The demo processes whose groups still run."""
    running = []
    for label, pid_file, name in DEMO_PROCESSES:
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            if group_alive(pid) and is_ours(pid, name):
                running.append(f"{label} (process group {pid})")
    return running


def stop_demo() -> int:
    """Stop every process the demo started (Airflow first: its tasks may still call moto)."""
    if not any(pid_file.exists() for _, pid_file, _ in DEMO_PROCESSES):
        print("No demo to stop (no pid file under .demo/).")
        return 0
    for label, pid_file, name in DEMO_PROCESSES:
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text().strip())
        if not group_alive(pid):
            print(f"{label} (process group {pid}) had already ended.")
        elif not is_ours(pid, name):
            print(f"Process {pid} is not the demo's {name} any more; leaving it alone.")
        else:
            print(f"{label} (process group {pid}): {stop_group(pid)}.")
        pid_file.unlink()
    return 0


def fresh_demo_dir() -> None:
    """Every `make demo` starts from an empty .demo/ (moto keeps its resources in memory only)."""
    running = running_demo()
    if running:
        raise DemoError(f"a demo is still running: {', '.join(running)}; stop it with `make demo-stop`")
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()


# --- (d) the REST API ------------------------------------------------------------------------


class Api(AirflowApi):
    """handsoff's REST client for the demo's Airflow: (status, body) answers, 0 when unreachable."""

    def __init__(self, port: int) -> None:
        super().__init__(f"http://localhost:{port}")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request (the token renewed once on 401); (0, None) when Airflow does not answer."""
        try:
            return self.request(method, path, body)
        except AirflowUnreachable:
            return 0, None

    def sign_in(self) -> None:
        try:
            self.login(USERNAME, PASSWORD)
        except AirflowApiError as err:
            raise DemoError(str(err)) from None


def log_tail(log_file: Path = LOG_FILE, lines: int = 30) -> str:
    if not log_file.exists():
        return ""
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


def wait_for_health(api: Api, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"airflow standalone exited with code {process.returncode}:\n{log_tail()}")
        if api.call("GET", "/api/v2/monitor/health")[0] == 200:
            return
        time.sleep(1)
    raise DemoError(f"Airflow not healthy after {HEALTH_TIMEOUT_S}s; end of {LOG_FILE}:\n{log_tail()}")


def wait_for_dags(api: Api) -> None:
    deadline = time.monotonic() + DAG_TIMEOUT_S
    missing = list(DEMO_DAG_IDS)
    while time.monotonic() < deadline:
        missing = [dag_id for dag_id in missing if api.call("GET", f"/api/v2/dags/{dag_id}")[0] != 200]
        if not missing:
            return
        time.sleep(2)
    _, errors = api.call("GET", "/api/v2/importErrors")
    details = json.dumps(errors, indent=2) if errors else "(none)"
    raise DemoError(f"DAGs {missing} did not appear after {DAG_TIMEOUT_S}s. Import errors: {details}")


def unpause(api: Api, dag_id: str) -> None:
    """Unpause before the push, so that the run the hook creates starts at once."""
    status, body = api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    if status != 200:
        raise DemoError(f"could not unpause {dag_id}: {status} {body}")


def wait_for_hook_run(api: Api, dag_id: str, sha: str) -> str:
    """The run the git hook created for `sha` (merge-<sha12>); the demo does not trigger it itself."""
    run_id = f"merge-{sha[:12]}"
    deadline = time.monotonic() + HOOK_RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")[0] == 200:
            return run_id
        time.sleep(1)
    raise DemoError(
        f"the push did not create run {run_id} of {dag_id} within {HOOK_RUN_TIMEOUT_S}s: "
        f"see the hook's output above (git push: remote: handsoff: ...)"
    )


def task_instances(api: Api, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={len(found)}"
        status, body = api.call("GET", path)
        if status != 200:
            raise DemoError(f"GET {path} answered {status}: {body}")
        found.extend(body["task_instances"])
        if not body["task_instances"] or len(found) >= body["total_entries"]:
            return found


def state_counts(instances: list[dict[str, Any]]) -> str:
    counts = Counter(ti["state"] or "none" for ti in instances)
    return ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))


def run_state(api: Api, dag_id: str, run_id: str) -> str | None:
    status, body = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    return body.get("state") if status == 200 else None


def wait_for_runs(api: Api, runs: dict[str, str]) -> dict[str, str]:
    """Follow runs ({dag_id: run_id}) to their end, printing progress; {dag_id: final state}."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    finished: dict[str, str] = {}
    last: dict[str, str] = {}
    last_print = 0.0
    while time.monotonic() < deadline:
        for dag_id, run_id in runs.items():
            if dag_id in finished:
                continue
            state = run_state(api, dag_id, run_id)
            if state in ("success", "failed"):
                finished[dag_id] = state
                say(f"{dag_id} run {run_id}: {state}; {state_counts(task_instances(api, dag_id, run_id))}")
            elif state:
                last[dag_id] = f"{dag_id} {state}: {state_counts(task_instances(api, dag_id, run_id))}"
        if len(finished) == len(runs):
            return finished
        if time.monotonic() - last_print >= 10:
            say(" | ".join(v for k, v in last.items() if k not in finished))
            last_print = time.monotonic()
        time.sleep(2)
    raise DemoError(f"runs not finished after {RUN_TIMEOUT_S}s: {sorted(set(runs) - set(finished))}")


# --- results ---------------------------------------------------------------------------------


def print_fleet() -> None:
    """The command deployer's fleet: the commit in each target folder's VERSION file."""
    for pipeline_dir in sorted(p for p in FLEET.glob("*") if p.is_dir()):
        versions = [
            f"{version.parent.name}={version.read_text().strip()[:12]}"
            for version in sorted(pipeline_dir.glob("*/VERSION"))
        ]
        if versions:
            print(f"  fleet {pipeline_dir.name}: {' '.join(versions)}")


def report_failure(api: Api, dag_id: str, run_id: str, port: int) -> None:
    """Which tasks failed, which never ran because of them, and what was rolled back."""
    by_state: dict[str, list[str]] = {}
    for ti in task_instances(api, dag_id, run_id):
        name = ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else "")
        by_state.setdefault(ti["state"] or "none", []).append(name)
    rolled_back = [t for t in by_state.get("success", []) if t.startswith("rollback.")]
    failed = ", ".join(sorted(by_state.get("failed", []))) or "(no task failed)"
    print(f"{dag_id} run {run_id} FAILED: {failed}")
    if by_state.get("upstream_failed"):
        print(f"  not run because of it: {', '.join(sorted(by_state['upstream_failed']))}")
    print(f"  rolled back: {', '.join(sorted(rolled_back)) or 'nothing'}")
    print(f"  task logs: http://localhost:{port}/dags/{dag_id}/runs/{run_id} or {AIRFLOW_HOME / 'logs'}")


def print_status(dag_id: str) -> None:
    """`handsoff status PIPELINE`: what every target runs now, from the ledger."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "HANDSOFF_SPECS_DIR": str(REPO / "pipeline_specs"),
    }
    result = subprocess.run(
        [str(VENV_BIN / "handsoff"), "status", dag_id], env=env, capture_output=True, text=True
    )
    print((result.stdout or result.stderr).rstrip())


def print_how_to(port: int) -> None:
    print(
        f"UI: http://localhost:{port}  (login {USERNAME} / {PASSWORD})\n"
        f"AWS: a moto server on {moto_url(read_ports()['moto'])} (Airflow's aws_default points at it)\n"
        "See a rollback: `make demo-alarm TARGET=onebox-iad` sets the CloudWatch alarm "
        "greeter-onebox-iad-errors to ALARM and pushes a change;\n"
        "  greeter-lambda deploys beta, then onebox-iad, whose bake sees the alarm: the run fails and\n"
        "  the `live` alias goes back to the version before. `make demo-ok TARGET=onebox-iad` clears it.\n"
        f"  (any Lambda target works: beta-pdx, onebox-iad, iad, pdx, dub; set it during a bake, too)\n"
        f"Deploy again: `make demo-push` (or commit in {WORK_REPO.relative_to(REPO)} and `git push`).\n"
        f"What runs where: AIRFLOW_HOME={AIRFLOW_HOME.relative_to(REPO)} .venv/bin/handsoff status "
        f"{LAMBDA_DAG_ID}   (--json for machines)",
        flush=True,
    )


def watch_runs(api: Api, seen: set[tuple[str, str]]) -> None:
    """Until Ctrl-C: report every run of the demo pipelines that ends (and the aliases after it)."""
    while True:
        for dag_id in DEMO_DAG_IDS:
            status, body = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=10")
            for run in body.get("dag_runs", []) if status == 200 else []:
                key = (dag_id, run["dag_run_id"])
                if key in seen or run["state"] not in ("success", "failed"):
                    continue
                seen.add(key)
                say(f"{dag_id} run {run['dag_run_id']}: {run['state']}")
                if run["state"] == "failed":
                    report_failure(api, dag_id, run["dag_run_id"], api_port(api))
                if dag_id == LAMBDA_DAG_ID:
                    print(demo_aws("aliases"), flush=True)
        time.sleep(WATCH_POLL_S)


def api_port(api: Api) -> int:
    return int(api.url.rsplit(":", 1)[1])


# --- the commands ----------------------------------------------------------------------------


def run_demo(detach: bool) -> int:
    port, aws_port = demo_port(), moto_port()
    fresh_demo_dir()
    ensure_ports_free(port, aws_port)
    write_ports(port, aws_port)
    say(f"AIRFLOW_HOME={AIRFLOW_HOME}, specs {REPO / 'pipeline_specs'}, fleet {FLEET}, port {port}")
    moto = start_moto(aws_port)
    log = MOTO_LOG_FILE.relative_to(REPO)
    say(f"started moto server on {moto_url(aws_port)} (pid {moto.pid}, log {log})")
    process = start_airflow(port, aws_port)  # starts while moto comes up and the resources are made
    say(f"started airflow standalone (pid {process.pid}, log {LOG_FILE.relative_to(REPO)})")
    wait_for_moto(aws_port, moto)
    for line in demo_aws("setup").splitlines():
        say(f"  AWS: {line}")
    prepare_greeter_repo()
    api = Api(port)
    wait_for_health(api, process)
    say("Airflow is healthy")
    api.sign_in()
    wait_for_dags(api)
    for dag_id in DEMO_DAG_IDS:
        unpause(api, dag_id)
    say(f"DAGs {', '.join(DEMO_DAG_IDS)} are loaded and unpaused")
    install_hook(port)
    sha = commit_and_push(first=True)
    say(f"pushed greeter commit {sha[:12]} to {BARE_REPO.relative_to(REPO)} (branch main)")
    runs = {dag_id: wait_for_hook_run(api, dag_id, sha) for dag_id in DEMO_DAG_IDS}
    say(f"the push triggered {', '.join(f'{d} {r}' for d, r in runs.items())} (conf commit={sha[:12]})")
    say(f"set up in {time.monotonic() - STARTED:.0f}s; following the runs")
    print_how_to(port)
    states = wait_for_runs(api, runs)
    print_fleet()
    print(demo_aws("aliases"))
    for dag_id, state in states.items():
        if state != "success":
            report_failure(api, dag_id, runs[dag_id], port)
    if all(state == "success" for state in states.values()):
        print(f"First successful runs {time.monotonic() - STARTED:.0f}s after `make demo` started.")
        print_status(LAMBDA_DAG_ID)
    print_how_to(port)
    if detach:
        print("Airflow and moto keep running; stop them with: make demo-stop")
        return 0 if all(state == "success" for state in states.values()) else 1
    print("Airflow and moto keep running; press Ctrl-C to stop everything (or `make demo-stop`).", flush=True)
    FOLLOWING["done"] = True
    watch_runs(api, {(dag_id, run_id) for dag_id, run_id in runs.items()})
    return 0


def push_change() -> int:
    if not (WORK_REPO / ".git").exists():
        raise DemoError("no demo repository: run `make demo` first")
    sha = commit_and_push(first=False)
    say(f"pushed greeter commit {sha[:12]}: every pipeline of the repo runs (run merge-{sha[:12]})")
    return 0


def set_alarm(target: str, state: str) -> int:
    print(demo_aws("alarm", target, *(["--ok"] if state == "OK" else [])))
    if state == "ALARM":
        push_change()
        print(f"greeter-lambda's bake after {target}'s wave sees the alarm and rolls back; watch the UI.")
    return 0


def on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop", action="store_true", help="stop the demo's Airflow and moto server")
    parser.add_argument("--detach", action="store_true", help="return after the first runs; keep running")
    parser.add_argument("--alarm", metavar="TARGET", help="set TARGET's rollback alarm to ALARM and push")
    parser.add_argument("--ok", metavar="TARGET", help="set TARGET's rollback alarm back to OK")
    parser.add_argument("--push", action="store_true", help="push a change to the demo repository")
    args = parser.parse_args(argv)
    try:
        if args.stop:
            return stop_demo()
        if args.alarm or args.ok:
            return set_alarm(args.alarm or args.ok, "ALARM" if args.alarm else "OK")
        if args.push:
            return push_change()
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, on_sigterm)
    # Ctrl-C stops everything, even when a parent shell started us with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run_demo(args.detach)
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        if running_demo():
            print("The demo's processes are still running; stop them with: make demo-stop", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the demo ...", file=sys.stderr, flush=True)
        stop_demo()
        return 0 if FOLLOWING["done"] else 130


if __name__ == "__main__":
    sys.exit(main())
