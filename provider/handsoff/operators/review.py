"""The review gate task: before the build, refuse a run that would ship unreviewed changes."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from handsoff.model.review import unreviewed
from handsoff.operators.base import HandsoffOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ReviewGateOperator(HandsoffOperator):
    """Check every commit between what production runs and the run's commit, merges included, for review
    trailers; a merge needs its own unless it is a clean merge of its parents (`handsoff.model.review`).

    Production = the targets of the pipeline's last wave (`production_targets`), as the ledger records
    them; on a first deployment only the run's commit is checked (a merge then needs its own review).
    The failure lists each commit lacking review (sha, author, subject; why, for a merge).
    """

    ui_color = "#fff0f5"

    def __init__(
        self,
        *,
        production_targets: list[str],
        trailers: list[str],
        min_reviewers: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.production_targets = production_targets
        self.trailers = trailers
        self.min_reviewers = min_reviewers

    def execute(self, context: Context) -> dict[str, Any]:
        base = self._production_commit()
        with tempfile.TemporaryDirectory(prefix="handsoff-review-") as tmp:
            mirror = self.git.mirror(f"{tmp}/mirror.git")
            commits = self.git.reviewed_commits(mirror, self.commit, base, self.trailers)
        failing = unreviewed(commits, self.min_reviewers)
        span = f"{base[:12]}..{self.commit[:12]}" if base else self.commit[:12]
        if failing:
            lines = "\n".join(f"  {c.describe()}" for c in failing)
            raise AirflowFailException(
                f"{len(failing)} of {len(commits)} commit(s) in {span} lack {self.min_reviewers} review(s) "
                f"by someone other than the author ({', '.join(self.trailers)}):\n{lines}"
            )
        self.log.info("All %d commit(s) in %s are reviewed", len(commits), span)
        return {"checked": [c.sha for c in commits], "base": base}

    def _production_commit(self) -> str | None:
        for target in self.production_targets:
            current = self.ledger.read(target).current
            if current is not None and current.commit:
                return current.commit
        return None
