"""The review gate: every change that reaches production was reviewed by someone other than its author.

Review is read from git's own trailer parsing (`git log --format=%(trailers:...)`, run by
`handsoff.hooks.git.GitHook.reviewed_commits`), e.g. `Reviewed-by: Alice <alice@example.com>` at the end
of a commit message. The rules here are pure: the log format, how to parse it, who counts as a reviewer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_FIELD, _RECORD, _VALUE = "\x00", "\x1e", "\x1f"
_EMAIL = re.compile(r"<([^>]+)>")


@dataclass(frozen=True)
class ReviewedCommit:
    """A non-merge commit with the people its review trailers name."""

    sha: str
    author: str
    author_email: str
    subject: str
    reviewers: tuple[str, ...]

    def independent_reviewers(self) -> set[str]:
        """Reviewers other than the author (compared by e-mail when given, else by name)."""
        mine = {self.author_email.lower(), self.author.lower()}
        return {_identity(r) for r in self.reviewers if _identity(r) not in mine}

    def describe(self) -> str:
        """`sha author: subject` for error messages."""
        return f"{self.sha[:12]} {self.author} <{self.author_email}>: {self.subject}"


def _identity(trailer_value: str) -> str:
    match = _EMAIL.search(trailer_value)
    return (match.group(1) if match else trailer_value).strip().lower()


def log_format(trailers: Sequence[str]) -> str:
    """The `git log --format` of `parse_log`: sha, author, e-mail, subject, review trailers."""
    keys = ",".join(f"key={key}" for key in trailers)
    return f"%H%x00%an%x00%ae%x00%s%x00%(trailers:{keys},valueonly,separator=%x1f)%x1e"


def parse_log(out: str) -> list[ReviewedCommit]:
    """The commits of a `git log` printed with `log_format`."""
    commits = []
    for record in filter(None, (r.strip("\n") for r in out.split(_RECORD))):
        sha, author, email, subject, values = record.split(_FIELD)
        reviewers = tuple(v.strip() for v in values.split(_VALUE) if v.strip())
        commits.append(ReviewedCommit(sha, author, email, subject, reviewers))
    return commits


def unreviewed(commits: Sequence[ReviewedCommit], min_reviewers: int) -> list[ReviewedCommit]:
    """The commits with fewer than `min_reviewers` reviewers other than their author."""
    return [c for c in commits if len(c.independent_reviewers()) < min_reviewers]
