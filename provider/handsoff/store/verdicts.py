"""Verdicts on commits: once a run finds a change bad, nothing promotes that commit any more.

A task's state is not evidence: the UI and the REST API can clear a failed bake (a new bake would pass,
the rollback having fixed the alarm) or mark a failed deploy "success". So the moment a deploy, a canary,
a test shard or a bake fails, it records the verdict in the store (`<store>/<pipeline>/verdicts/<sha>.json`,
a conditional write), and every deploy of that commit checks it first. Deploying the commit again takes a
new, explicit run (`handsoff trigger --again --reason …`), whose `source` task records who asked and why.

Events, oldest first: {"verdict": "bad", "run_id", "task", "why", "at"} and {"verdict": "again", "run_id",
"by", "reason", "at"}. A run may deploy the commit unless the latest event is a bad one, or an `again` that
belongs to another run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from handsoff.store.objects import UNCHANGED, ObjectStore

BAD, AGAIN = "bad", "again"


class Verdicts:
    """The verdicts of one pipeline's commits in `store`."""

    def __init__(self, store: ObjectStore, pipeline: str) -> None:
        self.store = store
        self.folder = f"{pipeline}/verdicts"

    def _key(self, commit: str) -> str:
        return f"{self.folder}/{commit}.json"

    def events(self, commit: str) -> list[dict[str, Any]]:
        """Every verdict on `commit`, oldest first."""
        text = self.store.read(self._key(commit)).text
        return list(json.loads(text)["events"]) if text else []

    def _add(self, commit: str, event: dict[str, Any]) -> None:
        def add(text: str | None) -> tuple[Any, None]:
            doc = json.loads(text) if text else {"commit": commit, "events": []}
            same = {k: v for k, v in event.items() if k != "at"}
            if any({k: v for k, v in e.items() if k != "at"} == same for e in doc["events"]):
                return UNCHANGED, None  # a retry of the same task records nothing twice
            doc["events"].append(event)
            return json.dumps(doc, indent=2), None

        self.store.update(self._key(commit), add)

    def record_bad(self, commit: str, run_id: str, task: str, why: str) -> None:
        """Run `run_id` found `commit` bad at `task`, because `why`."""
        self._add(commit, {"verdict": BAD, "run_id": run_id, "task": task, "why": why[:2000], "at": _now()})

    def allow_again(self, commit: str, run_id: str, by: str, reason: str) -> None:
        """Run `run_id` may deploy `commit` again although an earlier run found it bad (asked by `by`)."""
        self._add(commit, {"verdict": AGAIN, "run_id": run_id, "by": by, "reason": reason, "at": _now()})

    def blocking(self, commit: str, run_id: str) -> dict[str, Any] | None:
        """The verdict that forbids run `run_id` to deploy `commit` (None: it may)."""
        events = self.events(commit)
        if not events:
            return None
        latest = events[-1]
        if latest["verdict"] == BAD or latest["run_id"] != run_id:
            return latest
        return None

    def failed_tasks(self, commit: str, run_id: str) -> set[str]:
        """The tasks at which run `run_id` found `commit` bad (whatever their state says now)."""
        return {e["task"] for e in self.events(commit) if e["verdict"] == BAD and e["run_id"] == run_id}


def describe(event: dict[str, Any]) -> str:
    """A verdict in words, for refusals."""
    if event["verdict"] == BAD:
        return f"run {event['run_id']} found it bad at {event['task']}: {event['why']}"
    return f"run {event['run_id']} was started to deploy it again ({event['by']}: {event['reason']})"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
