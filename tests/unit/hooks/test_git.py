"""GitHook against real repositories: which commit a run deploys, clean checkouts, commits to review."""

from __future__ import annotations

from pathlib import Path

import pytest
from handsoff.hooks.git import GitError, GitHook
from handsoff.model.review import MergeCheck
from support.repos import git, make_service_repo


@pytest.fixture
def repo(tmp_path: Path):
    return make_service_repo(tmp_path / "svc.git")


def test_resolves_the_branch_head_and_abbreviations(repo, tmp_path: Path):
    first = repo.commit("first")
    second = repo.commit("second")
    hook = GitHook(str(repo.bare))
    mirror = hook.mirror(tmp_path / "m.git")

    assert hook.resolve(mirror, "main", None).sha == second
    info = hook.resolve(mirror, "main", first[:8])
    assert (info.sha, info.subject, info.author) == (first, "first", "Dev One")


@pytest.mark.parametrize(
    ("commit", "message"),
    [
        ("deadbeef", "unknown commit deadbeef in"),
        ("$(touch pwned)", "is not a hexadecimal SHA"),
        ("--output=x", "is not a hexadecimal SHA"),
    ],
)
def test_bad_commits_are_refused_with_the_reason(repo, tmp_path: Path, commit: str, message: str):
    hook = GitHook(str(repo.bare))
    with pytest.raises(GitError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
        hook.resolve(hook.mirror(tmp_path / "m.git"), "main", commit)
    assert not (tmp_path / "pwned").exists()


def test_a_commit_only_on_another_branch_is_refused(repo, tmp_path: Path):
    git("checkout", "-q", "-b", "feature", cwd=repo.work)
    (repo.work / "feature.txt").write_text("x")
    git("add", "-A", cwd=repo.work)
    git("commit", "-q", "-m", "feature work", cwd=repo.work)
    git("push", "-q", "origin", "feature", cwd=repo.work)
    sha = git("rev-parse", "HEAD", cwd=repo.work)
    hook = GitHook(str(repo.bare))

    with pytest.raises(GitError, match=f"commit {sha[:12]} is not on branch 'main'"):
        hook.resolve(hook.mirror(tmp_path / "m.git"), "main", sha)


def test_checkout_is_clean_and_at_the_commit(repo, tmp_path: Path):
    first = repo.commit("first", files={"a.txt": "one\n"})
    repo.commit("second", files={"a.txt": "two\n"})

    checkout = GitHook(str(repo.bare)).checkout(first, tmp_path / "co")

    assert (checkout / "a.txt").read_text() == "one\n"
    assert git("rev-parse", "HEAD", cwd=checkout) == first
    assert git("status", "--porcelain", cwd=checkout) == ""


def test_unreadable_repository_names_it(tmp_path: Path):
    with pytest.raises(GitError, match="cannot read source repository .*missing.git"):
        GitHook(str(tmp_path / "missing.git")).mirror(tmp_path / "m.git")


def _merge_feature(repo, own: dict[str, str]) -> str:
    """Branch `feature` with one commit, one commit on main, merge --no-ff with `own` extra files; push."""
    git("checkout", "-q", "-b", "feature", cwd=repo.work)
    (repo.work / "feature.txt").write_text("feature\n")
    git("add", "-A", cwd=repo.work)
    git("commit", "-q", "-m", "feature work", cwd=repo.work)
    git("checkout", "-q", "main", cwd=repo.work)
    repo.commit("main work")
    git("merge", "-q", "--no-ff", "--no-commit", "feature", cwd=repo.work)
    for rel, text in own.items():
        (repo.work / rel).write_text(text)
    git("add", "-A", cwd=repo.work)
    git("commit", "-q", "-m", "Merge branch 'feature'", cwd=repo.work)
    git("push", "-q", "origin", "HEAD:main", cwd=repo.work)
    return git("rev-parse", "HEAD", cwd=repo.work)


@pytest.mark.parametrize(
    ("own", "expected"),
    [({}, MergeCheck.CLEAN), ({"extra.py": "print(1)\n"}, MergeCheck.OWN_CHANGES)],
    ids=["clean-merge", "evil-merge"],
)
def test_reviewed_commits_include_merges_compared_to_a_clean_merge(repo, tmp_path: Path, own, expected):
    base = repo.commit("in production")
    merge = _merge_feature(repo, own)
    hook = GitHook(str(repo.bare))

    commits = hook.reviewed_commits(hook.mirror(tmp_path / "m.git"), merge, base, ["Reviewed-by"])

    assert [c.subject for c in commits] == ["Merge branch 'feature'", "main work", "feature work"]
    assert commits[0].sha == merge and len(commits[0].parents) == 2
    assert [c.merge for c in commits] == [expected, MergeCheck.NOT_A_MERGE, MergeCheck.NOT_A_MERGE]
