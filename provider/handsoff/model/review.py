"""The review gate: every change that reaches production was reviewed by someone other than its author.

Review is read from git's own trailer parsing (`git log --format=%(trailers:...)`, run by
`handsoff.hooks.git.GitHook.reviewed_commits`), e.g. `Reviewed-by: Alice <alice@example.com>` at the end
of a commit message. The rules here are pure: the log format, how to parse it, who counts as a reviewer,
which commits need review.

Every commit in the span is checked, merge commits included. A merge commit needs its own review trailers
unless git shows it has no changes of its own (`MergeCheck.CLEAN`): it has exactly two parents, they merge
without conflicts, its tree is exactly the tree `git merge-tree --write-tree <parent1> <parent2>` writes,
and the commits it brings in are checked themselves (they are, in a span `base..head`: each is either in
the span or already in production). Anything else fails closed and needs the merge's own review: changes
made in the merge (an "evil merge", a `-s ours` merge dropping a branch), a conflict resolution, an
octopus merge, a merge git cannot redo, and a merge deployed first (only the commit itself is checked
then, so the commits it brings in are not). A clean merge's trailers are not needed, but the commits it
brings in still need theirs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

_FIELD, _RECORD, _VALUE = "\x00", "\x1e", "\x1f"
_EMAIL = re.compile(r"<([^>]+)>")


class MergeCheck(Enum):
    """What git showed about a commit's own changes; the value explains a merge in error messages."""

    NOT_A_MERGE = "not a merge"
    CLEAN = "merge commit without changes of its own: a clean merge of its parents"
    OWN_CHANGES = "merge commit with changes of its own: its tree differs from a clean merge of its parents"
    NOT_CLEAN = "merge commit whose parents do not merge cleanly: its resolution needs review"
    UNCOVERED = "merge commit deployed first: the commits it merges are not checked, so it needs review"


def merge_check(
    parents: Sequence[str], tree: str, clean_merge_tree: str | None, merged_commits_checked: bool
) -> MergeCheck:
    """Classify a commit by its parents and tree.

    `clean_merge_tree` is the tree git writes merging the two parents when they merge without conflicts
    (None when they do not, or it was not computed); `merged_commits_checked` says whether the commits
    the merge brings in are checked too. Anything not shown to be clean is not CLEAN (fail closed).
    """
    if len(parents) < 2:
        return MergeCheck.NOT_A_MERGE
    if not merged_commits_checked:
        return MergeCheck.UNCOVERED
    if len(parents) != 2 or not clean_merge_tree or not tree:
        return MergeCheck.NOT_CLEAN
    return MergeCheck.CLEAN if clean_merge_tree == tree else MergeCheck.OWN_CHANGES


@dataclass(frozen=True)
class ReviewedCommit:
    """A commit (merges included) with the people its review trailers name."""

    sha: str
    author: str
    author_email: str
    subject: str
    reviewers: tuple[str, ...]
    parents: tuple[str, ...] = ()
    tree: str = ""
    merge: MergeCheck = MergeCheck.NOT_A_MERGE

    @property
    def is_merge(self) -> bool:
        """Whether the commit has more than one parent."""
        return len(self.parents) > 1

    def needs_review(self) -> bool:
        """Whether the commit has changes of its own to review (all but clean merges)."""
        return self.merge is not MergeCheck.CLEAN

    def independent_reviewers(self) -> set[str]:
        """Reviewers other than the author (compared by e-mail when given, else by name)."""
        mine = {self.author_email.lower(), self.author.lower()}
        return {_identity(r) for r in self.reviewers if _identity(r) not in mine}

    def describe(self) -> str:
        """`sha author: subject` for error messages, with `[merge commit: why]` for a merge."""
        text = f"{self.sha[:12]} {self.author} <{self.author_email}>: {self.subject}"
        return f"{text} [{self.merge.value}]" if self.is_merge else text


def _identity(trailer_value: str) -> str:
    match = _EMAIL.search(trailer_value)
    return (match.group(1) if match else trailer_value).strip().lower()


def log_format(trailers: Sequence[str]) -> str:
    """The `git log --format` of `parse_log`: sha, author, e-mail, subject, parents, tree, review trailers."""
    keys = ",".join(f"key={key}" for key in trailers)
    return f"%H%x00%an%x00%ae%x00%s%x00%P%x00%T%x00%(trailers:{keys},valueonly,separator=%x1f)%x1e"


def parse_log(out: str) -> list[ReviewedCommit]:
    """The commits of a `git log` printed with `log_format`.

    A merge comes out NOT_CLEAN (needs review) until `merge_check` shows otherwise.
    """
    commits = []
    for record in filter(None, (r.strip("\n") for r in out.split(_RECORD))):
        sha, author, email, subject, parents, tree, values = record.split(_FIELD)
        reviewers = tuple(v.strip() for v in values.split(_VALUE) if v.strip())
        parent_shas = tuple(parents.split())
        merge = merge_check(parent_shas, tree, None, merged_commits_checked=True)
        commits.append(ReviewedCommit(sha, author, email, subject, reviewers, parent_shas, tree, merge))
    return commits


def unreviewed(commits: Sequence[ReviewedCommit], min_reviewers: int) -> list[ReviewedCommit]:
    """The commits needing review with fewer than `min_reviewers` reviewers other than their author."""
    return [c for c in commits if c.needs_review() and len(c.independent_reviewers()) < min_reviewers]
