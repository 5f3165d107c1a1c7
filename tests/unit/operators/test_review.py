"""The review gate on real git history: trailers, self-review, ranges, minimum reviewers."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from handsoff.hooks.git import GitHook
from handsoff.model.records import LedgerEntry
from handsoff.model.review import unreviewed
from handsoff.operators.review import ReviewGateOperator
from handsoff.store.ledger import Ledger
from handsoff.store.objects import object_store
from support.repos import make_service_repo

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


def test_merge_commits_are_not_checked(tmp_path, repo):
    base = _commit(repo, "in production")
    commits = GitHook(str(repo.bare)).reviewed_commits(
        repo.bare, _commit(repo, "change", ALICE), base, TRAILERS
    )
    assert unreviewed(commits, 1) == []
