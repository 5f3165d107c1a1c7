"""The `handsoff` command line's registry: every command with its help and arguments, and shared options.

A leaf module, like Airflow's own ``cli_config``: the command modules import it (for ``UsageError``);
it imports none of them. Each command names its function by dotted path, imported only when that
command runs, so a command never pays for another's imports (`handsoff validate` imports no Airflow).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handsoff import settings

Run = Callable[[argparse.Namespace], int]

SHARD_INDEX_ENV = "HANDSOFF_SHARD_INDEX"
SHARD_TOTAL_ENV = "HANDSOFF_SHARD_TOTAL"
DEFAULT_TEST_PATTERNS = ("test_*.py", "*_test.py")


class UsageError(Exception):
    """A bad command line that argparse cannot see (for example a missing path); exit status 2."""


@dataclass(frozen=True)
class Arg:
    """One ``add_argument`` call: its flags and options."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    """An argument of a command."""
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    """A subcommand: one-line help, its function as ``module:function``, its arguments."""

    help: str
    func: str
    args: tuple[Arg, ...] = ()

    def load(self) -> Run:
        """The command's function, imported now."""
        module, _, name = self.func.partition(":")
        return getattr(importlib.import_module(module), name)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


# Options shared by several commands.
SPECS = arg("--specs", type=Path, metavar="DIR", help="specs folder (default: $HANDSOFF_SPECS_DIR)")
URL = arg(
    "--url",
    metavar="URL",
    help=f"Airflow URL (default: ${settings.AIRFLOW_URL_ENV} or {settings.DEFAULT_AIRFLOW_URL})",
)
USERNAME = arg("--username", metavar="USER", help=f"Airflow user (default: ${settings.AIRFLOW_USERNAME_ENV})")
PASSWORD = arg(
    "--password", metavar="PASSWORD", help=f"prefer ${settings.AIRFLOW_PASSWORD_ENV}: flags show in ps"
)
TOKEN = arg(
    "--token", metavar="TOKEN", help=f"a JWT instead of a login (default: ${settings.AIRFLOW_TOKEN_ENV})"
)
PIPELINE = arg("pipeline", metavar="PIPELINE", help="pipeline id")

COMMANDS: dict[str, Command] = {
    "validate": Command(
        "check pipeline specs (files or folders; default: the specs folder) and print every error",
        "handsoff.cli.validate:validate",
        (arg("paths", nargs="*", type=Path, metavar="PATH", help="spec file or folder"),),
    ),
    "render": Command(
        "print a resolved pipeline as a tree",
        "handsoff.cli.render:render",
        (arg("spec", type=Path, metavar="SPEC", help="spec file"),),
    ),
    "windows": Command(
        "print each deployment window of a spec: its state at a time and its next openings",
        "handsoff.cli.windows:windows",
        (
            arg("spec", type=Path, metavar="SPEC", help="spec file"),
            arg(
                "--at",
                metavar="ISO-TIME",
                help="the time to look at, e.g. 2026-11-26T12:00:00-08:00 (without an offset: in each "
                "window's time zone); default: now",
            ),
            arg("--next", type=_count, default=3, metavar="N", dest="count", help="openings to list (3)"),
        ),
    ),
    "shard": Command(
        "print the test files of one shard (balanced by a previous run's JUnit XML, else round robin)",
        "handsoff.cli.shard:shard",
        (
            arg("paths", nargs="*", type=Path, metavar="PATH", help="test files or folders (default: tests)"),
            arg("--index", type=int, help=f"shard index from 0 (default: ${SHARD_INDEX_ENV})"),
            arg("--total", type=int, help=f"number of shards (default: ${SHARD_TOTAL_ENV})"),
            arg("--junit", type=Path, metavar="XML", help="JUnit XML report of a previous run"),
            arg(
                "--pattern",
                action="append",
                metavar="GLOB",
                help="test file name pattern in folders (repeatable; default: "
                f"{' '.join(DEFAULT_TEST_PATTERNS)})",
            ),
            arg(
                "--verbose", action="store_true", help="print every shard and its expected seconds to stderr"
            ),
        ),
    ),
    "trigger": Command(
        "start a pipeline for a commit of its branch: run merge-<sha12>, once per commit",
        "handsoff.cli.trigger:trigger_command",
        (
            PIPELINE,
            arg(
                "--commit",
                metavar="SHA",
                help="commit to deploy (default: the head of the pipeline's branch)",
            ),
            arg(
                "--again",
                action="store_true",
                help="deploy the commit again although it already had a run (or a run found it bad): a "
                "new run again-<sha12>-<time>; needs --reason, which is recorded",
            ),
            arg("--reason", metavar="TEXT", help="why the commit is deployed again (with --again)"),
            URL,
            USERNAME,
            PASSWORD,
            TOKEN,
            SPECS,
        ),
    ),
    "git-hook": Command(
        "install a git hook that triggers the repository's pipelines when their branch is updated",
        "handsoff.cli.git_hook:git_hook_command",
        (
            arg("action", choices=["install"], help="what to do"),
            arg(
                "repo",
                type=Path,
                metavar="REPO",
                help="the git repository (bare: post-receive, else post-merge)",
            ),
            SPECS,
            URL,
            USERNAME,
            arg(
                "--password-file",
                type=Path,
                metavar="FILE",
                help=f"file holding the password (default: ${settings.AIRFLOW_PASSWORD_ENV}); "
                "copied to .handsoff-hook.env beside the hook, mode 0600",
            ),
        ),
    ),
    "status": Command(
        "print what every target of a pipeline runs now, since when, by which run, and before "
        "(from the ledger)",
        "handsoff.cli.status:status_command",
        (PIPELINE, arg("--json", action="store_true", help="print JSON"), SPECS),
    ),
    "rollback": Command(
        "roll a pipeline's targets back to their previous version (or --to a commit that ran there), "
        "newest wave first, through its rollback DAG",
        "handsoff.cli.rollback:rollback_command",
        (
            PIPELINE,
            arg("--target", action="append", metavar="T", help="a target (repeat for several)"),
            arg("--wave", metavar="W", help="every target of a wave (WAVE or STAGE.WAVE)"),
            arg("--stage", metavar="S", help="every target of a stage"),
            arg("--all", action="store_true", help="every target of the pipeline"),
            arg("--to", metavar="COMMIT", help="go back to this commit (it must have been deployed there)"),
            arg("--reason", required=True, metavar="TEXT", help="why (recorded in the ledger)"),
            URL,
            USERNAME,
            PASSWORD,
            TOKEN,
            SPECS,
        ),
    ),
}
