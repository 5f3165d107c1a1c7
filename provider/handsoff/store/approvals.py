"""Approvals as evidence: who approved which commit where, written only by the approval's own answer.

A task's state is not evidence: anyone who may edit the DAG's task instances can mark the approval task
"success" through the UI or `PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}`, and no answer
was given. So the approval task records the HITL answer of an assigned approver here
(`<store>/<pipeline>/approvals/<run id>/<where>.json`) when, and only when, the API server resumes it with
that answer; every deploy behind the approval reads this record itself and refuses without it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from handsoff.store.objects import ObjectStore

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Approvals:
    """The recorded approvals of one pipeline's runs in `store`."""

    def __init__(self, store: ObjectStore, pipeline: str) -> None:
        self.store = store
        self.folder = f"{pipeline}/approvals"

    def _key(self, run_id: str, where: str) -> str:
        return f"{self.folder}/{_UNSAFE.sub('_', run_id)}/{_UNSAFE.sub('_', where)}.json"

    def record(self, run_id: str, where: str, commit: str, user: dict[str, Any]) -> dict[str, Any]:
        """Record that `user` (the responder the API server authenticated) approved `commit` at `where`."""
        approval = {
            "run_id": run_id,
            "where": where,
            "commit": commit,
            "by": {"id": str(user.get("id", "")), "name": str(user.get("name", ""))},
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.store.write(self._key(run_id, where), json.dumps(approval, indent=2))
        return approval

    def withdraw(self, run_id: str, where: str) -> None:
        """Forget the approval of `where` in `run_id` (the approval is asked again, e.g. after a clear)."""
        self.store.delete(self._key(run_id, where))

    def read(self, run_id: str, where: str) -> dict[str, Any] | None:
        """The approval recorded for `where` in `run_id`, or None."""
        text = self.store.read(self._key(run_id, where)).text
        return json.loads(text) if text else None

    def missing(self, run_id: str, where: str, commit: str, approvers: list[str]) -> str | None:
        """Why `commit` may not deploy behind the approval of `where` (None: an approver approved it)."""
        approval = self.read(run_id, where)
        who = " or ".join(approvers)
        if approval is None:
            return (
                f"no approval of {where} by {who} is recorded for run {run_id}: the approval task was "
                "marked success by hand or never answered"
            )
        if approval.get("commit") != commit:
            other = str(approval.get("commit"))[:12]
            return f"the approval of {where} recorded for run {run_id} is for another commit ({other})"
        if approval["by"]["id"] not in approvers:
            return f"the approval of {where} was given by {approval['by']['id']}, who is not one of {who}"
        return None
