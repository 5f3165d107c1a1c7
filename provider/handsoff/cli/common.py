"""What the commands that talk to Airflow or read a pipeline share: exit codes, errors, credentials.

Errors are one line on stderr (``handsoff COMMAND: error: ...``). Nothing here imports Airflow.
"""

from __future__ import annotations

import argparse
import enum
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from handsoff import settings
from handsoff.cli.registry import UsageError
from handsoff.model.pipeline import Pipeline
from handsoff.spec import SpecErrors, load_pipeline, pipeline_file_for


class TriggerExit(enum.IntEnum):
    """Exit codes of `handsoff trigger` and `handsoff rollback` (2 is argparse's usage error)."""

    OK = 0  # triggered, or the run already existed
    USAGE = 2
    UNKNOWN_PIPELINE = 3  # no spec defines it, or its spec is invalid
    UNKNOWN_COMMIT = 4  # commit, branch or repository not found
    NOT_ON_BRANCH = 5
    AUTH = 6  # login or token refused (401/403)
    UNREACHABLE = 7  # connection refused, unknown host, timeout
    API = 8  # Airflow refused otherwise: DAG not found, bad request, server error


class TriggerError(Exception):
    """A command that did not happen; `code` is the exit status, the message one line."""

    def __init__(self, code: TriggerExit, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Credentials:
    """How to reach Airflow: a token, or a username and password (both None: no login)."""

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None


def fail(name: str, message: str, code: int) -> int:
    """Print `message` on one line of stderr as command `name`'s error; return `code`."""
    print(f"handsoff {name}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def specs_dir(args: argparse.Namespace) -> Path:
    """The specs folder: `--specs`, else the default (`$HANDSOFF_SPECS_DIR`, else pipeline_specs/)."""
    return (args.specs or settings.default_specs_dir()).absolute()


def credentials(args: argparse.Namespace) -> Credentials:
    """Flags first, then HANDSOFF_AIRFLOW_* variables: a token, or a username with its password, or none."""
    env = os.environ.get
    url = args.url or settings.airflow_url()
    if args.token and (args.username or args.password):
        raise UsageError("give either --token or --username/--password, not both")
    token = args.token or (None if args.username else env(settings.AIRFLOW_TOKEN_ENV))
    if token:
        return Credentials(url, token=token)
    username = args.username or env(settings.AIRFLOW_USERNAME_ENV)
    if not username:
        if args.password:
            raise UsageError(f"--password needs --username (or ${settings.AIRFLOW_USERNAME_ENV})")
        return Credentials(url)
    password = args.password or env(settings.AIRFLOW_PASSWORD_ENV)
    if not password:
        raise UsageError(
            f"user {username!r} needs a password: --password or ${settings.AIRFLOW_PASSWORD_ENV}"
        )
    return Credentials(url, username=username, password=password)


def find_pipeline(pipeline_id: str, specs_dir: Path) -> Pipeline:
    """The pipeline `pipeline_id` of the specs folder; TriggerError when missing or invalid."""
    path = pipeline_file_for(specs_dir, pipeline_id) if specs_dir.is_dir() else None
    if path is None:
        raise TriggerError(TriggerExit.UNKNOWN_PIPELINE, f"no pipeline {pipeline_id!r} in {specs_dir}")
    try:
        return load_pipeline(path, specs_dir)
    except SpecErrors as exc:
        more = f" (and {len(exc.issues) - 1} more; run `handsoff validate`)" if len(exc.issues) > 1 else ""
        raise TriggerError(
            TriggerExit.UNKNOWN_PIPELINE,
            f"pipeline {pipeline_id!r} has an invalid spec: {exc.issues[0]}{more}",
        ) from None
