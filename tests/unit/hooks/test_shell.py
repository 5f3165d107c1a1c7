"""Spec commands: values arrive as environment variables; secrets stay out; timeouts kill."""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import pytest
from handsoff.hooks import shell
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


# --- the process group, the default timeout, the bounded log -----------------------------------------


def _gone(pid: int, within: float = 1.0) -> bool:
    """The process no longer runs. A zombie counts as gone: some inits (in some containers and VMs) never
    reap orphans, so os.kill(pid, 0) would keep succeeding on a process that is dead."""
    ends = time.monotonic() + within
    while True:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (ProcessLookupError, FileNotFoundError):
            return True
        if state == b"Z":
            return True
        if time.monotonic() >= ends:
            return False
        time.sleep(0.05)


@pytest.fixture
def stray_pids() -> Iterator[list[int]]:
    """Pids a test's command started: SIGKILLed afterwards should the test fail with them still running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if not _gone(pid, within=0):
            with suppress(OSError):  # gone meanwhile
                if b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


def _pids(tmp_path: Path, stray_pids: list[int], *names: str) -> list[int]:
    """The pids the command wrote (`echo $! > name`), registered for clean-up."""
    pids = [int((tmp_path / name).read_text()) for name in names]
    stray_pids.extend(pids)
    return pids


def _elapsed(since: float) -> float:
    return time.monotonic() - since


def test_a_background_child_neither_hangs_the_step_nor_outlives_it(tmp_path: Path, stray_pids: list[int]):
    """Reading the pipe to EOF waited for the `sleep` (it holds the pipe) and left it running."""
    start = time.monotonic()

    output = run_command("start server", "sleep 30 & echo $! > bg.pid; echo started", env={}, cwd=tmp_path)

    assert _elapsed(start) < 4
    assert output == "started"
    [pid] = _pids(tmp_path, stray_pids, "bg.pid")
    assert _gone(pid)


def test_the_timeout_kills_the_whole_group(tmp_path: Path, stray_pids: list[int]):
    start = time.monotonic()
    with pytest.raises(CommandFailed, match="shard 1/2: timed out after 1s"):
        run_command(
            "shard 1/2",
            "sleep 30 & echo $! > a.pid; sleep 30 & echo $! > b.pid; wait",
            env={},
            cwd=tmp_path,
            timeout=timedelta(seconds=1),
        )
    assert _elapsed(start) < 3
    assert all(_gone(pid) for pid in _pids(tmp_path, stray_pids, "a.pid", "b.pid"))


def test_processes_ignoring_sigterm_are_killed_after_a_short_grace(tmp_path: Path, stray_pids: list[int]):
    """coreutils `timeout --kill-after=10` took 11s here; now SIGKILL follows SIGTERM after 2s."""
    start = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out after 1s"):
        run_command(
            "stubborn",
            "trap '' TERM; sleep 30 & echo $! > a.pid; wait",
            env={},
            cwd=tmp_path,
            timeout=timedelta(seconds=1),
        )
    assert 2.5 < _elapsed(start) < 5
    [pid] = _pids(tmp_path, stray_pids, "a.pid")
    assert _gone(pid)


def test_an_escaped_process_holding_the_pipe_does_not_hang_the_step(tmp_path: Path, stray_pids: list[int]):
    """A daemon in a session of its own is out of reach of the group kill; the pipe is closed anyway."""
    start = time.monotonic()

    output = run_command("daemon", "setsid sleep 30 & echo $! > d.pid; echo up", env={}, cwd=tmp_path)

    assert _elapsed(start) < 3
    assert output == "up"
    _pids(tmp_path, stray_pids, "d.pid")  # still running: the fixture ends it


def test_an_interrupt_of_the_task_stops_the_group(tmp_path: Path, stray_pids: list[int]):
    """Airflow's execution_timeout and SIGTERM arrive as exceptions in the task: the group still goes."""

    class Interrupt(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "interrupt me":
                raise KeyboardInterrupt

    handler = Interrupt()
    logger = logging.getLogger(shell.__name__)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_command("deploy", "sleep 30 & echo $! > a.pid; echo interrupt me; wait", env={}, cwd=tmp_path)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    [pid] = _pids(tmp_path, stray_pids, "a.pid")
    assert _gone(pid)


def test_without_a_timeout_the_default_applies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert timedelta(minutes=30) == shell.DEFAULT_TIMEOUT
    monkeypatch.setattr(shell, "DEFAULT_TIMEOUT", timedelta(seconds=1))
    start = time.monotonic()
    with pytest.raises(CommandFailed, match="build step hang: timed out after 1s"):
        run_command("build step hang", "sleep 30", env={}, cwd=tmp_path)
    assert _elapsed(start) < 3


def test_a_50_mb_line_costs_neither_memory_nor_log(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """The whole line used to be held (and logged, and returned): RSS grew by ~240 MB."""
    caplog.set_level(logging.INFO, logger=shell.__name__)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    output = run_command("flood", r"head -c 50000000 /dev/zero | tr '\0' x", env={}, cwd=tmp_path)

    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert growth_mb < 30
    assert len(output) < 100_000
    assert output == "x" * 4096 + f" … [{50_000_000 - 4096} more characters]"
    assert [r.getMessage() for r in caplog.records if r.name == shell.__name__] == [output]


def test_long_lines_are_cut_to_max_line_chars(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger=shell.__name__)

    output = run_command("wide", "printf 'é%.0s' $(seq 5000); echo; echo short", env={}, cwd=tmp_path)

    cut = "é" * shell.MAX_LINE_CHARS + " … [904 more characters]"
    assert output == f"{cut}\nshort"
    assert [r.getMessage() for r in caplog.records if r.name == shell.__name__] == [cut, "short"]


def test_the_log_stops_after_max_logged_lines_and_ends_with_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(shell, "MAX_LOGGED_LINES", 5)
    monkeypatch.setattr(shell, "TAIL_LINES", 3)
    caplog.set_level(logging.INFO, logger=shell.__name__)

    output = run_command("chatty", "seq 1 20", env={}, cwd=tmp_path)

    assert output == "18\n19\n20"
    assert [r.getMessage() for r in caplog.records if r.name == shell.__name__] == [
        "1",
        "2",
        "3",
        "4",
        "5",
        "[output beyond 5 lines is not logged; the last 3 lines follow when the command ends]",
        "[12 lines not logged; the last 3 lines of output:]",
        "18",
        "19",
        "20",
    ]


def test_the_result_is_the_tail_of_stdout_and_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The last line of output is still the result's last line; the lines before it come with it."""
    assert run_command("quiet", "true", env={}, cwd=tmp_path) == ""
    assert run_command("mixed", "echo out; echo err >&2; printf 'last  '", env={}, cwd=tmp_path) == (
        "out\nerr\nlast"
    )
    monkeypatch.setattr(shell, "TAIL_LINES", 2)
    assert run_command("tail", "seq 1 1000", env={}, cwd=tmp_path) == "999\n1000"


def test_the_full_output_streams_to_output_file(tmp_path: Path):
    """Every byte, undecoded and uncut, appended as it arrives (the command sees its own first line)."""
    log_file = tmp_path / "step.log"
    log_file.write_bytes(b"earlier step\n")
    command = (
        r"echo first; sleep 0.5; cp step.log seen.log; head -c 300000 /dev/zero | tr '\0' z; printf '\xff'"
    )

    output = run_command("logged", command, env={}, cwd=tmp_path, output_file=log_file)

    assert (tmp_path / "seen.log").read_bytes() == b"earlier step\nfirst\n"
    assert log_file.read_bytes() == b"earlier step\nfirst\n" + b"z" * 300_000 + b"\xff"
    assert output.endswith(" more characters]")
