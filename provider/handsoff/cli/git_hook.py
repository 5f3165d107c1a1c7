"""`handsoff git-hook install`: a git hook that triggers the pipelines of a repository on merge.

A bare repository gets `post-receive` (run by the server after a push: one "old new ref" line per
updated ref on stdin); a repository with a work tree gets `post-merge` (after `git merge` / `git pull`:
the current branch at HEAD). The hook triggers every pipeline whose `source.repo` is that repository
and whose branch is the updated branch; other branches trigger nothing (trunk-based).

The hook is a short shell script that calls `handsoff trigger PIPELINE --commit SHA` by absolute
path, once per pipeline. It always exits 0: a trigger that fails prints why and never blocks the push.
Which pipelines it triggers is decided at install time and written into the hook; install again after
adding a pipeline for the repository (installing is idempotent).

Exit codes: 0 installed, 1 not installed (the message says why), 2 usage.

Secrets: the URL and the username are written into the hook; the password goes to
`.handsoff-hook.env` next to it (mode 0600), which the hook reads. A hook that was not written by
handsoff is kept: it is renamed `<hook>.pre-handsoff` and run first, with the same stdin and
arguments.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from handsoff import settings
from handsoff.cli.common import fail, specs_dir
from handsoff.cli.registry import UsageError
from handsoff.hooks.git import GitError, run_git
from handsoff.model.pipeline import Pipeline
from handsoff.spec import load_all

MARKER = "# handsoff git hook"
ENV_FILE = ".handsoff-hook.env"
CHAINED_SUFFIX = ".pre-handsoff"


class HookError(Exception):
    """The hook could not be installed; the message says why and what to do."""


@dataclass(frozen=True)
class HookSettings:
    """What the hook passes to `handsoff trigger`: where the specs are and how to reach Airflow."""

    specs_dir: Path
    url: str
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class InstalledHook:
    """The installed hook: its path, the pipelines it triggers by branch, and what happened on the way."""

    path: Path
    pipelines: dict[str, list[str]]
    env_file: Path | None
    chained: Path | None


@dataclass(frozen=True)
class Repository:
    """A local git repository: whether it is bare, its hooks folder, and the paths that name it."""

    bare: bool
    hooks: Path
    names: frozenset[str]

    @property
    def hook_name(self) -> str:
        """`post-receive` for a bare repository, `post-merge` for one with a work tree."""
        return "post-receive" if self.bare else "post-merge"


def _git(repo: Path, *args: str) -> str:
    try:
        return run_git("-C", str(repo), *args)
    except GitError as err:
        raise HookError(f"{repo} is not a git repository ({err})") from None


def inspect_repository(path: Path) -> Repository:
    """The repository at `path` (a bare repository, or a work tree's top or .git folder)."""
    if not path.is_dir():
        raise HookError(f"{path} is not a folder")
    git_dir = Path(_git(path, "rev-parse", "--absolute-git-dir"))
    bare = _git(path, "rev-parse", "--is-bare-repository") == "true"
    hooks = Path(_git(path, "rev-parse", "--git-path", "hooks"))
    if not hooks.is_absolute():  # relative to `path` (core.hooksPath may point anywhere)
        hooks = path / hooks
    names = {os.path.realpath(git_dir)}
    if not bare:
        names.add(os.path.realpath(_git(path, "rev-parse", "--show-toplevel")))
    return Repository(bare=bare, hooks=Path(os.path.realpath(hooks)), names=frozenset(names))


def same_repository(source_repo: str, repository: Repository) -> bool:
    """Whether a spec's `source.repo` (a path or a file:// URL) names `repository`."""
    local = source_repo.removeprefix("file://")
    if "://" in local or (":" in local and not local.startswith("/")):
        return False  # a remote URL (https://, ssh://, host:path)
    return os.path.realpath(local) in repository.names


def pipelines_by_branch(pipelines: list[Pipeline], repository: Repository) -> dict[str, list[str]]:
    """The ids of the pipelines of `repository`, by branch, sorted."""
    found: dict[str, list[str]] = {}
    for pipeline in sorted(pipelines, key=lambda p: p.id):
        if same_repository(pipeline.source.repo, repository):
            found.setdefault(pipeline.source.branch, []).append(pipeline.id)
    return dict(sorted(found.items()))


def handsoff_executable() -> Path:
    """The `handsoff` console script of this environment (beside the interpreter, not resolved)."""
    candidate = Path(sys.executable).absolute().parent / "handsoff"
    if not candidate.is_file():
        raise HookError(f"the handsoff command is not installed beside {sys.executable} ({candidate})")
    return candidate


def render_hook(
    hook_name: str, pipelines: dict[str, list[str]], settings: HookSettings, handsoff: Path
) -> str:
    """The hook script."""
    q = shlex.quote
    exports = [
        "unset HANDSOFF_AIRFLOW_USERNAME HANDSOFF_AIRFLOW_PASSWORD HANDSOFF_AIRFLOW_TOKEN",
        f"export HANDSOFF_SPECS_DIR={q(str(settings.specs_dir))}",
        f"export HANDSOFF_AIRFLOW_URL={q(settings.url)}",
    ]
    if settings.username:
        exports.append(f"export HANDSOFF_AIRFLOW_USERNAME={q(settings.username)}")
    summary = "; ".join(f"{branch}: {', '.join(ids)}" for branch, ids in pipelines.items())
    chained = f"{hook_name}{CHAINED_SUFFIX}"
    if hook_name == "post-receive":
        body = _POST_RECEIVE.format(chained=chained, cases=_cases(pipelines, "refs/heads/", '"$new"'))
    else:
        body = _POST_MERGE.format(chained=chained, cases=_cases(pipelines, "", '"$(git rev-parse HEAD)"'))
    return _HEADER.format(
        marker=MARKER,
        hook=hook_name,
        summary=summary,
        handsoff=q(str(handsoff)),
        exports="\n".join(exports),
        env_file=ENV_FILE,
        body=body,
    )


def _cases(pipelines: dict[str, list[str]], prefix: str, sha: str) -> str:
    lines = []
    for branch, ids in pipelines.items():
        calls = "; ".join(f"trigger {shlex.quote(pid)} {sha}" for pid in ids)
        lines.append(f"        {shlex.quote(prefix + branch)}) {calls} ;;")
    return "\n".join(lines)


_HEADER = """#!/bin/sh
{marker} ({hook}): installed by `handsoff git-hook install`; installing again replaces it.
# Triggers, by branch: {summary}.
# A failing trigger prints why and never blocks: this hook always exits 0.
HANDSOFF={handsoff}
{exports}
hooks_dir=$(cd "$(dirname "$0")" && pwd)
if [ -r "$hooks_dir/{env_file}" ]; then
    set -a; . "$hooks_dir/{env_file}"; set +a
fi
trigger() {{
    if out=$("$HANDSOFF" trigger "$1" --commit "$2" 2>&1 </dev/null); then
        printf '%s\\n' "$out" | sed 's/^/handsoff: /'
    else
        echo "handsoff: could not trigger $1: ${{out#handsoff trigger: error: }}"
    fi
}}
{body}
exit 0
"""

_POST_RECEIVE = """input=$(cat)
if [ -x "$hooks_dir/{chained}" ]; then
    printf '%s\\n' "$input" | "$hooks_dir/{chained}" "$@"
fi
unset $(git rev-parse --local-env-vars)
printf '%s\\n' "$input" | while read -r old new ref; do
    case "$new" in *[!0]*) ;; *) continue ;; esac  # a deleted ref
    case "$ref" in
{cases}
    esac
done"""

_POST_MERGE = """if [ -x "$hooks_dir/{chained}" ]; then
    "$hooks_dir/{chained}" "$@"
fi
branch=$(git symbolic-ref --quiet --short HEAD) || exit 0  # detached HEAD: no branch was merged
unset $(git rev-parse --local-env-vars)
case "$branch" in
{cases}
esac"""


def _is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def _write_env_file(path: Path, password: str | None) -> Path | None:
    """The password for the hook, readable by its owner only; removed when there is none."""
    if password is None:
        path.unlink(missing_ok=True)
        return None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        os.fchmod(stream.fileno(), 0o600)  # an older file may have had a wider mode
        stream.write(f"HANDSOFF_AIRFLOW_PASSWORD={shlex.quote(password)}\n")
    return path


def install(repo: Path, pipelines: list[Pipeline], settings: HookSettings) -> InstalledHook:
    """Install (or replace) the handsoff hook of `repo`; a foreign hook is kept and chained."""
    repository = inspect_repository(repo)
    by_branch = pipelines_by_branch(pipelines, repository)
    if not by_branch:
        raise HookError(
            f"no pipeline in {settings.specs_dir} has source.repo {repo}: "
            "nothing to trigger, no hook installed"
        )
    handsoff = handsoff_executable()
    repository.hooks.mkdir(parents=True, exist_ok=True)
    hook = repository.hooks / repository.hook_name
    chained = hook.with_name(hook.name + CHAINED_SUFFIX)
    kept = None
    if hook.exists() and not _is_ours(hook):
        if chained.exists():
            raise HookError(
                f"{hook} was not written by handsoff and {chained.name} exists already; "
                f"merge them by hand, then install again"
            )
        hook.rename(chained)
        kept = chained
    env_file = _write_env_file(repository.hooks / ENV_FILE, settings.password)
    tmp = hook.with_name(f".{hook.name}.handsoff-tmp")
    tmp.write_text(render_hook(repository.hook_name, by_branch, settings, handsoff))
    tmp.chmod(0o755)
    tmp.replace(hook)
    return InstalledHook(path=hook, pipelines=by_branch, env_file=env_file, chained=kept)


def git_hook_command(args: argparse.Namespace) -> int:
    """Install (or replace) the hook; 1 when it cannot be installed."""
    if not args.repo.exists():
        raise UsageError(f"no such repository: {args.repo}")
    password = os.environ.get(settings.AIRFLOW_PASSWORD_ENV)
    if args.password_file is not None:
        try:
            password = args.password_file.read_text().strip("\n")
        except OSError as err:
            raise UsageError(f"cannot read the password file {args.password_file}: {err.strerror}") from None
    username = args.username or os.environ.get(settings.AIRFLOW_USERNAME_ENV)
    specs = specs_dir(args)
    hook_settings = HookSettings(
        specs, args.url or settings.airflow_url(), username, password if username else None
    )
    loaded = load_all(specs)
    try:
        hook = install(args.repo.absolute(), list(loaded.pipelines.values()), hook_settings)
    except HookError as err:
        return fail("git-hook", str(err), 1)
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
