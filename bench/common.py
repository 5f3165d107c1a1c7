"""What every benchmark shares: paths, the machine, medians, results files, processes stopped by group.

Standard library only (plus psutil where a benchmark samples a process), so that each script starts fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
VENV_BIN = Path(sys.executable).parent
DAGFACTORY_VENV = OUT / "dagfactory-venv"
CONSTRAINTS = REPO / "constraints.txt"
STOP_TIMEOUT_S = 20


def out_dir(*parts: str) -> Path:
    """A folder under bench/out/, created."""
    path = OUT.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def say(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write bench/out/<name>.json with the machine and the time it was measured."""
    path = out_dir() / f"{name}.json"
    payload = {"benchmark": name, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **data}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    say(f"wrote {path.relative_to(REPO)}")
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory, OS and Python, read from /proc where there is one."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": platform.processor() or platform.machine(),
        "memory_gib": None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    cpuinfo, meminfo = Path("/proc/cpuinfo"), Path("/proc/meminfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    if hasattr(os, "sched_getaffinity"):
        info["nproc"] = len(os.sched_getaffinity(0))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info["loadavg_at_start"] = [round(x, 2) for x in load] if load else None
    return info


def versions(python: Path | None = None) -> dict[str, str]:
    """Installed versions of the packages the numbers depend on (in the venv of `python`)."""
    names = [
        "apache-airflow",
        "apache-airflow-task-sdk",
        "apache-airflow-providers-amazon",
        "apache-airflow-providers-standard",
        "airflow-provider-handsoff",
        "jsonschema",
        "moto",
        "dag-factory",
        "PyYAML",
    ]
    code = (
        "import json, importlib.metadata as m, sys\n"
        "out = {}\n"
        f"for n in {names!r}:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    exe = str(python or sys.executable)
    return json.loads(subprocess.run([exe, "-c", code], check=True, capture_output=True, text=True).stdout)


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit, so that `with` blocks still stop their process groups."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


class Group:
    """A command in its own process group (session), output to a log; stopped by its group id.

    A context manager: the group is stopped on exit, even when the benchmark failed.
    """

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        self.args, self.env, self.log, self.cwd = list(args), env, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Group:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> str:
        """SIGTERM the whole group, SIGKILL it after STOP_TIMEOUT_S; say how it ended."""
        if self.proc is None:
            return "never started"
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            self.proc.wait()
            return "had already ended"
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            self.proc.poll()
            if not group_alive(pgid):
                return "stopped with SIGTERM"
            time.sleep(0.3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        return f"killed with SIGKILL after {STOP_TIMEOUT_S}s"

    def __exit__(self, *exc: object) -> None:
        outcome = self.stop()
        say(f"{Path(self.args[0]).name} {' '.join(self.args[1:2])} (process group {self.pid}): {outcome}")

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies do not count)."""
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
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False
