"""Operating pipelines from the command line: `trigger`, `git-hook install`, `status`.

Registered in ``handsoff.cli`` by importing this module. Errors are one line on stderr
(``handsoff COMMAND: error: ...``) with the exit codes below; nothing here imports Airflow at module
level (`status` does, inside its function, to read the ledger).

Exit codes of `trigger`: see ``handsoff.trigger.TriggerExit`` (0 triggered or already there; 2 usage;
3 unknown pipeline; 4 unknown commit/branch/repository; 5 commit not on the branch; 6 login or token
refused; 7 Airflow unreachable; 8 Airflow refused otherwise). `git-hook install`: 0, 1 not installed
(the message says why), 2 usage. `status`: 0, 1 ledger unreadable, 2 usage, 3 unknown pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from handsoff import settings
from handsoff.cli import SPECS_ARG, URL_ARG, USERNAME_ARG, UsageError, argument, command
from handsoff.trigger import Credentials, TriggerError, TriggerExit, describe, find_pipeline, trigger


def _fail(name: str, message: str, code: int) -> int:
    """Print `message` on one line of stderr; return `code`."""
    print(f"handsoff {name}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _specs_dir(args: argparse.Namespace) -> Path:
    return (args.specs or settings.default_specs_dir()).absolute()


def _credentials(args: argparse.Namespace) -> Credentials:
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


@command(
    "trigger",
    "start a pipeline for a commit of its branch: run merge-<sha12>, once per commit",
    argument("pipeline", metavar="PIPELINE", help="pipeline id"),
    argument("--commit", metavar="SHA", help="commit to deploy (default: the head of the pipeline's branch)"),
    URL_ARG,
    USERNAME_ARG,
    argument(
        "--password", metavar="PASSWORD", help=f"prefer ${settings.AIRFLOW_PASSWORD_ENV}: flags show in ps"
    ),
    argument(
        "--token", metavar="TOKEN", help=f"a JWT instead of a login (default: ${settings.AIRFLOW_TOKEN_ENV})"
    ),
    SPECS_ARG,
)
def trigger_command(args: argparse.Namespace) -> int:
    """Trigger the run; print what happened. Never prints the password or the token."""
    credentials = _credentials(args)
    try:
        pipeline = find_pipeline(args.pipeline, _specs_dir(args))
        result = trigger(pipeline, args.commit, credentials)
    except TriggerError as err:
        return _fail("trigger", str(err), err.code)
    print("\n".join(describe(result)))
    return TriggerExit.OK


@command(
    "git-hook",
    "install a git hook that triggers the repository's pipelines when their branch is updated",
    argument("action", choices=["install"], help="what to do"),
    argument(
        "repo", type=Path, metavar="REPO", help="the git repository (bare: post-receive, else post-merge)"
    ),
    SPECS_ARG,
    URL_ARG,
    USERNAME_ARG,
    argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the password (default: ${settings.AIRFLOW_PASSWORD_ENV}); "
        "copied to .handsoff-hook.env beside the hook, mode 0600",
    ),
)
def git_hook_command(args: argparse.Namespace) -> int:
    """Install (or replace) the hook; 1 when it cannot be installed."""
    from handsoff.githook import HookError, HookSettings, install
    from handsoff.spec import load_all

    if not args.repo.exists():
        raise UsageError(f"no such repository: {args.repo}")
    password = os.environ.get(settings.AIRFLOW_PASSWORD_ENV)
    if args.password_file is not None:
        try:
            password = args.password_file.read_text().strip("\n")
        except OSError as err:
            raise UsageError(f"cannot read the password file {args.password_file}: {err.strerror}") from None
    username = args.username or os.environ.get(settings.AIRFLOW_USERNAME_ENV)
    specs = _specs_dir(args)
    hook_settings = HookSettings(
        specs, args.url or settings.airflow_url(), username, password if username else None
    )
    loaded = load_all(specs)
    try:
        hook = install(args.repo.absolute(), list(loaded.pipelines.values()), hook_settings)
    except HookError as err:
        return _fail("git-hook", str(err), 1)
    print(f"installed {hook.path.name} hook: {hook.path}")
    for branch, ids in hook.pipelines.items():
        print(
            f"  on {branch}: triggers {', '.join(ids)} at {hook_settings.url}"
            + (f" as {username}" if username else "")
        )
    if hook.env_file is not None:
        print(f"  password stored in {hook.env_file} (mode 0600)")
    if hook.chained is not None:
        print(f"  kept the existing hook as {hook.chained.name}; it runs first")
    if loaded.errors:
        print(
            f"  note: {len(loaded.errors)} spec issue(s) under {specs}: broken specs are skipped "
            "(see handsoff validate)"
        )
    return 0


@command(
    "status",
    "print what every target of a pipeline runs now, since when, by which run, and before (from the ledger)",
    argument("pipeline", metavar="PIPELINE", help="pipeline id"),
    argument("--json", action="store_true", help="print JSON"),
    SPECS_ARG,
)
def status_command(args: argparse.Namespace) -> int:
    """The pipeline's ledger as a table (or JSON); targets never deployed show "-"."""
    try:
        pipeline = find_pipeline(args.pipeline, _specs_dir(args))
    except TriggerError as err:
        return _fail("status", str(err), err.code)
    from handsoff.artifacts import store_root
    from handsoff.ledger import Ledger
    from handsoff.status import pipeline_status, status_json, status_lines

    try:
        ledger = Ledger(store_root(pipeline.artifact_store, pipeline.aws_conn_id), pipeline.id)
        rows = pipeline_status(pipeline, ledger)
    except Exception as err:  # the store may be remote: any I/O error, one line
        return _fail("status", f"cannot read the ledger of {pipeline.id}: {err}", 1)
    if args.json:
        print(json.dumps(status_json(pipeline, str(ledger.base), rows), indent=2))
    else:
        print("\n".join(status_lines(pipeline, str(ledger.base), rows)))
    return 0
