"""The review gate on real git history: trailers, self-review, ranges, minimum reviewers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from handsoff.hooks.git import GitHook
from handsoff.model.records import LedgerEntry
from handsoff.operators.review import ReviewGateOperator
from handsoff.store.ledger import Ledger
from handsoff.store.objects import object_store
from support.repos import GIT_ENV, git, make_service_repo

TRAILERS = ["Reviewed-by", "Approved-by"]
ALICE = "Reviewed-by: Alice <alice@example.com>"
BOB = "Approved-by: Bob <bob@example.com>"
SELF = "Reviewed-by: Dev One <dev1@example.com>"  # the test repos commit as Dev One


@pytest.fixture
def repo(tmp_path: Path):
    return make_service_repo(tmp_path / "svc.git")


def _commit(repo, subject: str, *trailers: str) -> str:
    message = subject + ("\n\n" + "\n".join(trailers) if trailers else "")
    return repo.commit(message, files={"CHANGELOG": subject + "\n"})


def _gate(tmp_path: Path, repo, commit: str, min_reviewers: int = 1) -> ReviewGateOperator:
    return ReviewGateOperator(
        task_id="review",
        pipeline="svc",
        repo=str(repo.bare),
        store=(tmp_path / "store").as_uri(),
        commit=commit,
        production_targets=["prod-1"],
        trailers=TRAILERS,
        min_reviewers=min_reviewers,
    )


def _in_production(tmp_path: Path, commit: str) -> None:
    ledger = Ledger(object_store((tmp_path / "store").as_uri()), "svc")
    ledger.record_deploy("prod-1", LedgerEntry(commit=commit, run_id="r0", time="t"))


def test_trailers_are_read_with_gits_own_parsing(repo):
    sha = _commit(repo, "feature", ALICE, BOB, "Signed-off-by: Dev One <dev1@example.com>")
    [commit] = GitHook(str(repo.bare)).reviewed_commits(repo.bare, sha, None, TRAILERS)
    assert commit.reviewers == ("Alice <alice@example.com>", "Bob <bob@example.com>")
    assert commit.independent_reviewers() == {"alice@example.com", "bob@example.com"}


def test_reviewed_range_passes(tmp_path, repo):
    _in_production(tmp_path, _commit(repo, "already in production"))
    _commit(repo, "one", ALICE)
    head = _commit(repo, "two", BOB)

    result = _gate(tmp_path, repo, head).execute({"run_id": "r1"})
    assert len(result["checked"]) == 2


@pytest.mark.parametrize(
    ("trailers", "min_reviewers"),
    [((SELF,), 1), ((), 1), ((ALICE,), 2), ((ALICE, "Reviewed-by: alice <ALICE@example.com>"), 2)],
    ids=["self-review", "no-trailer", "one-of-two", "same-reviewer-twice"],
)
def test_an_unreviewed_commit_in_the_middle_fails_naming_it(tmp_path, repo, trailers, min_reviewers):
    _in_production(tmp_path, _commit(repo, "in production"))
    _commit(repo, "reviewed before", ALICE, BOB)
    bad = _commit(repo, "sneaky change", *trailers)
    head = _commit(repo, "reviewed after", ALICE, BOB)

    with pytest.raises(AirflowFailException) as failure:
        _gate(tmp_path, repo, head, min_reviewers).execute({"run_id": "r1"})
    message = str(failure.value)
    assert f"{bad[:12]} Dev One <dev1@example.com>: sneaky change" in message
    assert message.startswith("1 of 3 commit(s)")


def test_first_deployment_checks_only_the_commit_itself(tmp_path, repo):
    _commit(repo, "old unreviewed history")
    head = _commit(repo, "first release", ALICE)
    assert _gate(tmp_path, repo, head).execute({"run_id": "r1"})["checked"] == [head]


# Merges: every commit in the span is checked, merges included; a merge whose tree is exactly the clean
# merge of its parents has no changes of its own and is covered by the commits it brings in.


def _local(repo, subject: str, *trailers: str, files: dict[str, str]) -> str:
    """Commit `files` (path -> text, replacing) on the work clone's current branch, without pushing."""
    for rel, text in files.items():
        (repo.work / rel).write_text(text)
    git("add", "-A", cwd=repo.work)
    git("commit", "-q", "-m", subject + ("\n\n" + "\n".join(trailers) if trailers else ""), cwd=repo.work)
    return git("rev-parse", "HEAD", cwd=repo.work)


def _feature(repo, subject: str, *trailers: str, files: dict[str, str]) -> None:
    """A commit on branch `feature` (from main's head); leaves the work clone on main."""
    git("checkout", "-q", "-B", "feature", "main", cwd=repo.work)
    _local(repo, subject, *trailers, files=files)
    git("checkout", "-q", "main", cwd=repo.work)


def _merge(repo, subject: str, *trailers: str, own: dict[str, str] | None = None, ours: bool = False) -> str:
    """Merge `feature` into main (--no-ff); `own` files are the merge's own changes (or its conflict
    resolution); push main; return the merge commit."""
    strategy = ["-s", "ours"] if ours else []
    merge = subprocess.run(
        ["git", "merge", "-q", "--no-ff", "--no-commit", *strategy, "feature"],
        cwd=repo.work,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert merge.returncode == 0 or own, merge.stdout + merge.stderr  # a conflict needs a resolution
    sha = _local(repo, subject, *trailers, files=own or {})
    assert len(git("rev-parse", f"{sha}^@", cwd=repo.work).split()) == 2
    git("push", "-q", "origin", "HEAD:main", cwd=repo.work)
    return sha


def _reviewed_branches(tmp_path: Path, repo) -> None:
    """Production runs main's head; then a reviewed commit on main and a reviewed one on `feature`."""
    _in_production(tmp_path, _commit(repo, "in production"))
    _feature(repo, "feature work", ALICE, files={"feature.txt": "feature\n"})
    _commit(repo, "main work", BOB)


def test_an_evil_merge_of_reviewed_commits_fails_naming_the_merge(tmp_path, repo):
    _reviewed_branches(tmp_path, repo)
    evil = _merge(repo, "Merge branch 'feature'", own={"backdoor.py": "import os\n"})

    with pytest.raises(AirflowFailException) as failure:
        _gate(tmp_path, repo, evil).execute({"run_id": "r1"})
    message = str(failure.value)
    assert message.startswith("1 of 3 commit(s)")
    assert f"{evil[:12]} Dev One <dev1@example.com>: Merge branch 'feature' [merge commit" in message
    assert "changes of its own" in message


def test_a_conflict_resolution_needs_its_own_review(tmp_path, repo):
    _in_production(tmp_path, _commit(repo, "in production"))
    _feature(repo, "feature wording", ALICE, files={"CHANGELOG": "feature\n"})
    _commit(repo, "main wording", BOB)
    merge = _merge(repo, "Merge branch 'feature'", own={"CHANGELOG": "resolved\n"})

    with pytest.raises(AirflowFailException, match="do not merge cleanly") as failure:
        _gate(tmp_path, repo, merge).execute({"run_id": "r1"})
    assert f"{merge[:12]} Dev One <dev1@example.com>: Merge branch 'feature' [merge commit" in str(
        failure.value
    )


def test_a_merge_discarding_a_branch_needs_its_own_review(tmp_path, repo):
    _reviewed_branches(tmp_path, repo)
    merge = _merge(repo, "Merge branch 'feature'", ours=True)  # -s ours: drops feature.txt

    with pytest.raises(AirflowFailException, match=merge[:12]):
        _gate(tmp_path, repo, merge).execute({"run_id": "r1"})


def test_a_clean_merge_of_reviewed_commits_passes_and_is_checked(tmp_path, repo):
    _reviewed_branches(tmp_path, repo)
    merge = _merge(repo, "Merge branch 'feature'")

    result = _gate(tmp_path, repo, merge).execute({"run_id": "r1"})
    assert merge in result["checked"] and len(result["checked"]) == 3


def test_a_clean_merge_does_not_cover_an_unreviewed_commit_it_brings_in(tmp_path, repo):
    _in_production(tmp_path, _commit(repo, "in production"))
    _feature(repo, "unreviewed feature", files={"feature.txt": "feature\n"})
    merge = _merge(repo, "Merge branch 'feature'", ALICE)

    with pytest.raises(AirflowFailException) as failure:
        _gate(tmp_path, repo, merge).execute({"run_id": "r1"})
    assert "Dev One <dev1@example.com>: unreviewed feature" in str(failure.value)
    assert merge[:12] not in str(failure.value).split("\n", 1)[1]


def test_a_reviewed_evil_merge_passes(tmp_path, repo):
    _reviewed_branches(tmp_path, repo)
    merge = _merge(repo, "Merge branch 'feature'", ALICE, own={"extra.py": "print(1)\n"})

    result = _gate(tmp_path, repo, merge).execute({"run_id": "r1"})
    assert merge in result["checked"] and len(result["checked"]) == 3


def test_a_self_reviewed_evil_merge_fails(tmp_path, repo):
    _reviewed_branches(tmp_path, repo)
    merge = _merge(repo, "Merge branch 'feature'", SELF, own={"extra.py": "print(1)\n"})

    with pytest.raises(AirflowFailException, match=merge[:12]):
        _gate(tmp_path, repo, merge).execute({"run_id": "r1"})


def test_first_deployment_of_a_merge_needs_the_merge_reviewed(tmp_path, repo):
    _feature(repo, "unreviewed feature", files={"feature.txt": "feature\n"})
    merge = _merge(repo, "Merge branch 'feature'")  # clean, but what it brings in is not checked

    with pytest.raises(AirflowFailException) as failure:
        _gate(tmp_path, repo, merge).execute({"run_id": "r1"})
    assert f"{merge[:12]} Dev One <dev1@example.com>: Merge branch 'feature' [merge commit" in str(
        failure.value
    )

    reviewed = _merge_again_reviewed(repo)
    assert _gate(tmp_path, repo, reviewed).execute({"run_id": "r2"})["checked"] == [reviewed]


def _merge_again_reviewed(repo) -> str:
    _feature(repo, "more feature", files={"feature.txt": "more\n"})
    return _merge(repo, "Merge branch 'feature' again", ALICE)
