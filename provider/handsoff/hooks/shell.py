"""Running the spec's shell commands: environment variables in, never pasted into the command.

Commands get the worker's environment minus anything starting with AIRFLOW_ or AWS_ (connections,
secret keys, credentials), plus the HANDSOFF_* variables of the run.

Process group: every command runs with bash in a session (and process group) of its own. A step ends
when that bash exits, not when its output pipe closes: a background child (`server &`) keeps the pipe
open and would hang the step. Then, and at the timeout (DEFAULT_TIMEOUT when the caller names none),
and when the task itself is interrupted, the whole group gets SIGTERM and, after a short grace, SIGKILL,
so that nothing a step started outlives it. Output still in the pipe is read for a moment more, then the
pipe is closed: it is never read to EOF once bash has gone.

Bounded log: stdout and stderr, merged, are read in chunks and logged line by line, each line cut to
MAX_LINE_CHARS characters; after MAX_LOGGED_LINES lines nothing more is logged live, and the last
TAIL_LINES lines are logged when the command ends. Only those last lines are kept in memory, so a
command printing gigabytes (or one endless line) costs the worker neither memory nor log space. The
full output can go to a file (`output_file`).
"""

from __future__ import annotations

import codecs
import logging
import os
import selectors
import signal
import subprocess
import time
from collections import deque
from collections.abc import Mapping
from contextlib import nullcontext, suppress
from datetime import timedelta
from pathlib import Path
from typing import IO, BinaryIO

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)
MAX_LINE_CHARS = 4096
MAX_LOGGED_LINES = 10_000
TAIL_LINES = 200

_WITHHELD_PREFIXES = ("AIRFLOW_", "AWS_", "_AIRFLOW")
# A task's stdin is the socket to Airflow's task supervisor. Seeing a socket there, bash takes itself for
# an ssh session and reads ~/.bashrc (which may rewrite PATH); --norc stops that. The command reads
# /dev/null instead of the supervisor's socket.
_BASH_OPTIONS = ("--noprofile", "--norc")
_NO_STDIN = "exec </dev/null; "
_CHUNK_BYTES = 64 * 1024
_TICK_SECONDS = 0.05  # how often the loops look at bash and the group while output is quiet
_KILL_GRACE_SECONDS = 2.0  # between SIGTERM and SIGKILL to the group
_DRAIN_SECONDS = 0.5  # output still read after the group was stopped


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
    output_file: Path | None = None,
) -> str:
    """Run `command` with bash in `cwd`; raise CommandFailed naming `label` unless it exits 0.

    Returns the tail of the output: its last TAIL_LINES lines (each cut to MAX_LINE_CHARS characters,
    trailing whitespace stripped) joined by newlines, so the last line of output is the last line of the
    result; "" for no output. `timeout` defaults to DEFAULT_TIMEOUT. With `output_file`, every byte of
    output is appended to that file as it arrives.
    """
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + limit.total_seconds()
    argv = ["bash", *_BASH_OPTIONS, "-c", _NO_STDIN + command]
    with open(output_file, "ab", buffering=0) if output_file is not None else nullcontext() as copy:
        output = _Output(copy)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**base_env(), **env},
            start_new_session=True,
        )
        assert proc.stdout is not None  # stdout=PIPE
        stream = _Stream(proc.stdout, output)
        try:
            exited = _wait_for_exit(proc, stream, deadline)
        finally:  # also on an interrupt (the task's own timeout, SIGTERM): no child outlives the step
            _stop_group(proc, stream)
            tail = output.finish()
    if not exited:
        raise CommandFailed(f"{label}: timed out after {int(limit.total_seconds())}s")
    if proc.returncode != 0:
        raise CommandFailed(f"{label}: exited with code {proc.returncode}")
    return tail


def _wait_for_exit(proc: subprocess.Popen[bytes], stream: _Stream, deadline: float) -> bool:
    """Read output until bash exits (True) or the deadline passes (False); EOF alone ends nothing."""
    while proc.poll() is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        stream.pump(min(remaining, _TICK_SECONDS))
    return True


def _stop_group(proc: subprocess.Popen[bytes], stream: _Stream) -> None:
    """SIGTERM the command's group, SIGKILL what is left after the grace, then drain and close the pipe.

    Output is read during the grace so that a process cleaning up never blocks on a full pipe.
    """
    pgid = proc.pid  # start_new_session: bash leads its own group
    _signal_group(pgid, signal.SIGTERM)
    grace_ends = time.monotonic() + _KILL_GRACE_SECONDS
    while proc.poll() is None or _group_alive(pgid):
        if time.monotonic() >= grace_ends:
            _signal_group(pgid, signal.SIGKILL)
            proc.wait()
            break
        stream.pump(_TICK_SECONDS)
    stream.drain(_DRAIN_SECONDS)
    stream.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal every process of the group; one that is already gone is no error."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: an init that never reaps
    orphans (as in some containers) would otherwise keep a dead group "alive" until the SIGKILL."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return True
    for stat in proc_dir.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
            state, _ppid, pgrp = stat.read_bytes().rsplit(b")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) == pgid and state != b"Z":
            return True
    return False


class _Stream:
    """The read end of the command's merged stdout/stderr: read in chunks, never waited on for EOF."""

    def __init__(self, pipe: IO[bytes], output: _Output) -> None:
        self._pipe = pipe
        self._output = output
        self._selector = selectors.DefaultSelector()  # not select(): a worker's fds may exceed 1024
        self._selector.register(pipe.fileno(), selectors.EVENT_READ)
        os.set_blocking(pipe.fileno(), False)
        self.eof = False

    def pump(self, wait: float) -> None:
        """Hand one chunk that arrives within `wait` seconds to the output; at EOF just wait."""
        if self.eof:
            time.sleep(wait)
            return
        if not self._selector.select(max(wait, 0.0)):
            return
        try:
            chunk = os.read(self._pipe.fileno(), _CHUNK_BYTES)
        except BlockingIOError:
            return
        if chunk:
            self._output.feed(chunk)
        else:
            self.eof = True

    def drain(self, seconds: float) -> None:
        """Read what is still coming for up to `seconds`: an escaped process may hold the pipe forever."""
        ends = time.monotonic() + seconds
        while not self.eof and (remaining := ends - time.monotonic()) > 0:
            self.pump(remaining)

    def close(self) -> None:
        """Close the read end (a process still writing gets SIGPIPE)."""
        self._selector.close()
        self._pipe.close()


class _Output:
    """The command's output as lines: logged (bounded), the last ones kept, every byte copied to a file."""

    def __init__(self, copy: BinaryIO | None) -> None:
        self._copy = copy
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
        self._max_chars = MAX_LINE_CHARS
        self._kept: list[str] = []  # the current line's first _max_chars characters
        self._kept_chars = 0
        self._dropped_chars = 0  # and how many came after them
        self.lines = 0
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def feed(self, chunk: bytes) -> None:
        """Copy a chunk and split it into lines (a newline byte is never part of a UTF-8 sequence)."""
        if self._copy is not None:
            self._copy.write(chunk)
        for i, piece in enumerate(self._decoder.decode(chunk).split("\n")):
            if i:
                self._end_line()
            self._extend(piece)

    def finish(self) -> str:
        """End a last line without newline, log the tail not logged live; return the tail."""
        self._extend(self._decoder.decode(b"", final=True))
        if self._kept_chars or self._dropped_chars:
            self._end_line()
        unlogged = self.lines - MAX_LOGGED_LINES
        if unlogged > 0:
            shown = min(unlogged, len(self.tail))
            log.info("[%d lines not logged; the last %d lines of output:]", unlogged - shown, shown)
            for line in list(self.tail)[len(self.tail) - shown :]:
                log.info("%s", line)
        return "\n".join(self.tail)

    def _extend(self, text: str) -> None:
        """Add to the current line, keeping only its first characters and counting the rest."""
        keep = text[: max(self._max_chars - self._kept_chars, 0)]
        if keep:
            self._kept.append(keep)
            self._kept_chars += len(keep)
        self._dropped_chars += len(text) - len(keep)

    def _end_line(self) -> None:
        """Log the current line (until MAX_LOGGED_LINES) and keep it in the tail."""
        line = "".join(self._kept)
        line = f"{line} … [{self._dropped_chars} more characters]" if self._dropped_chars else line.rstrip()
        self._kept, self._kept_chars, self._dropped_chars = [], 0, 0
        self.lines += 1
        self.tail.append(line)
        if self.lines <= MAX_LOGGED_LINES:
            log.info("%s", line)
        elif self.lines == MAX_LOGGED_LINES + 1:
            log.info(
                "[output beyond %d lines is not logged; the last %d lines follow when the command ends]",
                MAX_LOGGED_LINES,
                self.tail.maxlen,
            )
