"""Git access: resolve the commit a run deploys, make clean checkouts, read review trailers.

`run_git` is the one way handsoff runs git. Every runtime value (commit, branch) reaches git as its own
argv entry, never through a shell.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from handsoff.model.review import ReviewedCommit, log_format, merge_check, parse_log

_SHA = re.compile(r"^[0-9a-fA-F]{4,40}$")


class GitError(RuntimeError):
    """A git operation failed; the message says what and where."""


class UnknownCommitError(GitError):
    """The requested commit (or the branch) does not exist in the repository."""


class NotOnBranchError(GitError):
    """The commit exists but is not on the pipeline's branch."""


def run_git(*args: str, cwd: str | Path | None = None) -> str:
    """Run git; its stdout (stripped), or GitError with git's message."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GitError(proc.stderr.strip() or f"git {args[0]} failed with exit code {proc.returncode}")
    return proc.stdout.strip()


def git_succeeds(*args: str, cwd: str | Path | None = None) -> bool:
    """Whether git exits 0 (for questions like `merge-base --is-ancestor`)."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False).returncode == 0


@dataclass(frozen=True)
class CommitInfo:
    """A resolved commit."""

    sha: str
    author: str
    author_email: str
    subject: str


class GitHook:
    """Thin wrapper over the git CLI for one source repository (a local path or a URL)."""

    def __init__(self, repo: str) -> None:
        self.repo = repo

    def mirror(self, dest: str | Path) -> Path:
        """Clone the repository bare into `dest` (history only, for resolving commits)."""
        try:
            run_git("clone", "--bare", "--quiet", "--", self.repo, str(dest))
        except GitError as err:
            raise GitError(f"cannot read source repository {self.repo}: {err}") from err
        return Path(dest)

    def resolve(self, mirror: Path, branch: str, commit: str | None) -> CommitInfo:
        """Resolve `commit` (full or abbreviated SHA) or, when None, the head of `branch`.

        The commit must be on `branch` (trunk-based: only the pipeline's branch deploys).
        """
        try:
            head = run_git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", cwd=mirror)
        except GitError:
            raise UnknownCommitError(f"branch {branch!r} does not exist in {self.repo}") from None
        if commit is None:
            sha = head
        else:
            if not _SHA.match(commit):
                raise UnknownCommitError(f"commit {commit!r} is not a hexadecimal SHA (4 to 40 characters)")
            try:
                sha = run_git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=mirror)
            except GitError:
                raise UnknownCommitError(f"unknown commit {commit} in {self.repo}") from None
            if not git_succeeds("merge-base", "--is-ancestor", sha, head, cwd=mirror):
                raise NotOnBranchError(f"commit {sha[:12]} is not on branch {branch!r} of {self.repo}")
        fmt = "%an%x00%ae%x00%s"
        author, email, subject = run_git("log", "-1", f"--format={fmt}", sha, "--", cwd=mirror).split("\0")
        return CommitInfo(sha=sha, author=author, author_email=email, subject=subject)

    def message(self, mirror: Path, sha: str) -> str:
        """The full commit message of `sha` (subject, blank line, body), trailing whitespace removed."""
        return run_git("log", "-1", "--format=%B", sha, "--", cwd=mirror).rstrip()

    def checkout(self, sha: str, dest: str | Path) -> Path:
        """Make a clean checkout of `sha` in `dest` (which must not exist or be empty)."""
        run_git("clone", "--quiet", "--no-checkout", "--", self.repo, str(dest))
        run_git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha, cwd=dest)
        return Path(dest)

    def reviewed_commits(
        self, mirror: Path, head: str, base: str | None, trailers: Sequence[str]
    ) -> list[ReviewedCommit]:
        """Every commit in `base..head` (just `head` when base is None), merges included, with its review
        trailers and, for a merge, whether it is a clean merge of its parents (`model.review.merge_check`).
        """
        span = [head, "-1"] if base is None else [f"{base}..{head}"]
        out = run_git("log", f"--format={log_format(trailers)}", *span, "--", cwd=mirror)
        commits = parse_log(out)
        if base is None:  # first deployment: what a merge brings in is not checked, so it needs review
            return [replace(c, merge=merge_check(c.parents, c.tree, None, False)) for c in commits]
        return [
            replace(c, merge=merge_check(c.parents, c.tree, _clean_merge_tree(mirror, c), True))
            for c in commits
        ]


def _clean_merge_tree(mirror: Path, commit: ReviewedCommit) -> str | None:
    """The tree git writes merging a two-parent merge's parents; None if not one, on conflicts or errors."""
    if len(commit.parents) != 2 or not all(_SHA.match(p) for p in commit.parents):
        return None
    try:  # exit code 1 on conflicts: GitError, so None (fail closed)
        out = run_git("merge-tree", "--write-tree", "--no-messages", *commit.parents, cwd=mirror)
    except GitError:
        return None
    tree = out.splitlines()[0].strip() if out else ""
    return tree if _SHA.match(tree) else None
