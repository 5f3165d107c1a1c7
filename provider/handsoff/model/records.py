"""What the deployment ledger records per target, and the pure rules by which a deploy or rollback changes it.

A target's record says what it runs now (`current`), what it ran before (`previous`) and everything that
happened to it (`history`, complete: never capped). `store.ledger` keeps one record per target; these
functions decide its content.

A deploy records where and how it deployed (`config`: the resolved deployer, the target's fields, the AWS
connection, the repository) and what ran there just before (`detail["before"]`, as the deployer saw it),
so that a rollback restores those coordinates exactly, whatever the spec says by then.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

#: the note of the restore point made from a deployer's `before` (what ran before handsoff's first deploy)
BEFORE_HANDSOFF = "as before handsoff's first deploy"


@dataclass(frozen=True)
class LedgerEntry:
    """One thing that happened to a target."""

    commit: str
    run_id: str
    time: str
    action: str = "deploy"
    artifact: str = ""
    stage: str = ""
    wave: str = ""
    note: str = ""
    #: deployer-specific facts needed to restore this version (Lambda version, task definition, ...)
    detail: dict[str, Any] = field(default_factory=dict)
    #: on-demand rollbacks: who asked, and why
    requested_by: str = ""
    reason: str = ""
    #: where and how the deploy was made: {"deploy": resolved deployer, "target": fields, "aws_conn_id",
    #: "repo"} (empty in entries written before handsoff recorded it)
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerEntry:
        """An entry as stored (keys this version does not know are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def before_handsoff(self) -> LedgerEntry | None:
        """What ran before handsoff's first deploy, as the deployer recorded it in `detail["before"]`
        (None when it is not known). A `before` with `absent` means nothing ran there."""
        before = self.detail.get("before")
        if not before:
            return None
        return LedgerEntry(
            commit="", run_id="", time="", note=BEFORE_HANDSOFF, detail=before, config=self.config
        )


@dataclass(frozen=True)
class TargetRecord:
    """What a target runs now (`current`), what it ran before (`previous`), and its history."""

    target: str
    current: LedgerEntry | None = None
    previous: LedgerEntry | None = None
    history: tuple[LedgerEntry, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        """Serialise for the store."""
        doc: dict[str, Any] = {
            "target": self.target,
            "current": asdict(self.current) if self.current else None,
            "previous": asdict(self.previous) if self.previous else None,
            "history": [asdict(e) for e in self.history],
        }
        return json.dumps(doc, indent=2)

    @classmethod
    def from_json(cls, text: str) -> TargetRecord:
        """Parse what `to_json` wrote."""
        doc = json.loads(text)

        def entry(d: dict[str, Any] | None) -> LedgerEntry | None:
            return LedgerEntry.from_dict(d) if d else None

        return cls(
            target=doc["target"],
            current=entry(doc.get("current")),
            previous=entry(doc.get("previous")),
            history=tuple(LedgerEntry.from_dict(d) for d in doc.get("history", [])),
        )

    def deployed(self, entry: LedgerEntry) -> TargetRecord:
        """The record after a deploy of `entry.commit`: the old current becomes previous.

        Redeploying the commit that already runs keeps `previous` (and is how a retry stays idempotent).
        """
        same = self.current is not None and self.current.commit == entry.commit
        return TargetRecord(
            target=self.target,
            current=entry,
            previous=self.previous if same else self.current,
            history=(*self.history, entry),
        )

    def noted(self, entry: LedgerEntry) -> TargetRecord:
        """The record with `entry` in its history only: something happened, what runs did not change
        (a canary that failed and was reverted)."""
        return TargetRecord(self.target, self.current, self.previous, (*self.history, entry))

    def rolled_back(self, entry: LedgerEntry) -> TargetRecord:
        """The record after a rollback to `entry`: a commit, what ran before handsoff (no commit, the
        deployer's `before` as detail), or nothing (no commit and nothing, or `absent`, before)."""
        nothing = not entry.commit and (not entry.detail or entry.detail.get("absent"))
        restored = None if nothing else entry
        previous = _deployed_before(self.history, entry.commit) if entry.commit else None
        return TargetRecord(
            target=self.target,
            current=restored,
            previous=previous,
            history=(*self.history, entry),
        )


def now_iso() -> str:
    """The current UTC time as ISO 8601 (how the ledger writes times)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _deployed_before(history: tuple[LedgerEntry, ...], commit: str) -> LedgerEntry | None:
    """The deploy that preceded the latest deploy of `commit` (another commit), if any."""
    deploys = [e for e in history if e.action == "deploy"]
    last = max((i for i, e in enumerate(deploys) if e.commit == commit), default=None)
    if last is None:
        return None
    return next((e for e in reversed(deploys[:last]) if e.commit != commit), None)
