"""Git access for pipelines: resolve the commit a run deploys and make clean checkouts.

Every runtime value (commit, branch) reaches git as its own argv entry, never through a shell.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SHA = re.compile(r"^[0-9a-fA-F]{4,40}$")


class GitError(RuntimeError):
    """A git operation failed; the message says what and where."""


class UnknownCommitError(GitError):
    """The requested commit (or the branch) does not exist in the repository."""


class NotOnBranchError(GitError):
    """The commit exists but is not on the pipeline's branch."""


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

    @staticmethod
    def _git(*args: str, cwd: str | Path | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise GitError(proc.stderr.strip() or f"git {args[0]} failed with exit code {proc.returncode}")
        return proc.stdout.strip()

    def mirror(self, dest: str | Path) -> Path:
        """Clone the repository bare into `dest` (history only, for resolving commits)."""
        try:
            self._git("clone", "--bare", "--quiet", "--", self.repo, str(dest))
        except GitError as err:
            raise GitError(f"cannot read source repository {self.repo}: {err}") from err
        return Path(dest)

    def resolve(self, mirror: Path, branch: str, commit: str | None) -> CommitInfo:
        """Resolve `commit` (full or abbreviated SHA) or, when None, the head of `branch`.

        The commit must be on `branch` (trunk-based: only the pipeline's branch deploys).
        """
        try:
            head = self._git(
                "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", cwd=mirror
            )
        except GitError:
            raise UnknownCommitError(f"branch {branch!r} does not exist in {self.repo}") from None
        if commit is None:
            sha = head
        else:
            if not _SHA.match(commit):
                raise UnknownCommitError(f"commit {commit!r} is not a hexadecimal SHA (4 to 40 characters)")
            try:
                sha = self._git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=mirror)
            except GitError:
                raise UnknownCommitError(f"unknown commit {commit} in {self.repo}") from None
            ancestor = subprocess.run(
                ["git", "merge-base", "--is-ancestor", sha, head], cwd=mirror, capture_output=True
            )
            if ancestor.returncode != 0:
                raise NotOnBranchError(f"commit {sha[:12]} is not on branch {branch!r} of {self.repo}")
        fmt = "%an%x00%ae%x00%s"
        author, email, subject = self._git("log", "-1", f"--format={fmt}", sha, "--", cwd=mirror).split("\0")
        return CommitInfo(sha=sha, author=author, author_email=email, subject=subject)

    def message(self, mirror: Path, sha: str) -> str:
        """The full commit message of `sha` (subject, blank line, body), trailing whitespace removed."""
        return self._git("log", "-1", "--format=%B", sha, "--", cwd=mirror).rstrip()

    def checkout(self, sha: str, dest: str | Path) -> Path:
        """Make a clean checkout of `sha` in `dest` (which must not exist or be empty)."""
        self._git("clone", "--quiet", "--no-checkout", "--", self.repo, str(dest))
        self._git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha, cwd=dest)
        return Path(dest)
