"""Review rules without git: which commits need review (merges included) and how they are named."""

from __future__ import annotations

import pytest
from handsoff.model.review import MergeCheck, ReviewedCommit, log_format, merge_check, parse_log, unreviewed

P1, P2, P3 = "a" * 40, "b" * 40, "c" * 40
TREE, OTHER = "1" * 40, "2" * 40


@pytest.mark.parametrize(
    ("parents", "clean_tree", "checked", "expected"),
    [
        ((), None, True, MergeCheck.NOT_A_MERGE),
        ((P1,), None, True, MergeCheck.NOT_A_MERGE),
        ((P1, P2), TREE, True, MergeCheck.CLEAN),
        ((P1, P2), OTHER, True, MergeCheck.OWN_CHANGES),
        ((P1, P2), None, True, MergeCheck.NOT_CLEAN),
        ((P1, P2, P3), TREE, True, MergeCheck.NOT_CLEAN),
        ((P1, P2), TREE, False, MergeCheck.UNCOVERED),
    ],
    ids=["root", "commit", "clean-merge", "evil-merge", "conflicts", "octopus", "first-deployment"],
)
def test_merge_check_fails_closed(parents, clean_tree, checked, expected):
    assert merge_check(parents, TREE, clean_tree, checked) is expected


def _commit(parents: tuple[str, ...], merge: MergeCheck, *reviewers: str) -> ReviewedCommit:
    author = ("Dev One", "dev1@example.com")
    return ReviewedCommit("d" * 40, *author, "Merge it", reviewers, parents, TREE, merge)


def test_only_a_clean_merge_needs_no_review_of_its_own():
    clean = _commit((P1, P2), MergeCheck.CLEAN)
    evil = _commit((P1, P2), MergeCheck.OWN_CHANGES)
    reviewed_evil = _commit((P1, P2), MergeCheck.OWN_CHANGES, "Alice <alice@example.com>")
    plain = _commit((P1,), MergeCheck.NOT_A_MERGE)
    assert unreviewed([clean, evil, reviewed_evil, plain], 1) == [evil, plain]


def test_a_merge_is_named_as_one_with_the_reason():
    evil = _commit((P1, P2), MergeCheck.OWN_CHANGES)
    assert evil.describe() == (
        "dddddddddddd Dev One <dev1@example.com>: Merge it [merge commit with changes of its own: "
        "its tree differs from a clean merge of its parents]"
    )
    plain = _commit((P1,), MergeCheck.NOT_A_MERGE)
    assert plain.describe() == "dddddddddddd Dev One <dev1@example.com>: Merge it"


def test_parsed_merges_need_review_until_shown_clean():
    out = f"{'d' * 40}\0Dev One\0dev1@example.com\0Merge it\0{P1} {P2}\0{TREE}\0Alice <a@x>\x1fBob\x1e\n"
    [commit] = parse_log(out)
    assert (commit.parents, commit.tree, commit.reviewers) == ((P1, P2), TREE, ("Alice <a@x>", "Bob"))
    assert commit.merge is MergeCheck.NOT_CLEAN and commit.needs_review()
    assert "%P" in log_format(["Reviewed-by"]) and "%T" in log_format(["Reviewed-by"])
