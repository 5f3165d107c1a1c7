"""The deployment ledger: per target, the commit deployed now and before, and by which run.

One JSON document per target (`<store>/<pipeline>/ledger/<target>.json`), so parallel deploys of
different targets never write the same object. Rollback and `handsoff status` read it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import ObjectStoragePath

_HISTORY_LIMIT = 100


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
            return LedgerEntry(**d) if d else None

        return cls(
            target=doc["target"],
            current=entry(doc.get("current")),
            previous=entry(doc.get("previous")),
            history=tuple(LedgerEntry(**d) for d in doc.get("history", [])),
        )


def now_iso() -> str:
    """The current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    """The ledger of one pipeline."""

    def __init__(self, root: ObjectStoragePath, pipeline: str) -> None:
        self.base = root / pipeline / "ledger"

    def _path(self, target: str) -> ObjectStoragePath:
        return self.base / f"{target}.json"

    def read(self, target: str) -> TargetRecord:
        """The record of `target` (empty when it was never deployed)."""
        path = self._path(target)
        if not path.exists():
            return TargetRecord(target=target)
        return TargetRecord.from_json(path.read_text())

    def all(self) -> list[TargetRecord]:
        """Every target's record, sorted by target name."""
        if not self.base.exists():
            return []
        names = sorted(
            p.name[: -len(".json")]
            for p in self.base.iterdir()
            if p.name.endswith(".json") and not p.name.endswith(".inflight.json")
        )
        return [self.read(name) for name in names]

    def _write(self, record: TargetRecord) -> None:
        path = self._path(record.target)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.protocol in ("file", "local", ""):
            tmp = path.parent / f".{record.target}.{uuid.uuid4().hex}.tmp"
            tmp.write_text(record.to_json())
            tmp.replace(path)
        else:
            path.write_text(record.to_json())

    def _inflight(self, target: str) -> ObjectStoragePath:
        return self.base / f"{target}.inflight.json"

    def begin_deploy(self, target: str, run_id: str, commit: str) -> dict[str, Any] | None:
        """Mark a deploy of `commit` to `target` as started; return the mark an earlier try left, if any.

        A mark from the same run and commit means an earlier try was interrupted mid-deploy (a killed
        worker or scheduler): the target's state is unknown, so the caller must not deploy blindly again.
        """
        path = self._inflight(target)
        earlier = json.loads(path.read_text()) if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"run_id": run_id, "commit": commit, "time": now_iso()}))
        if earlier and earlier.get("run_id") == run_id and earlier.get("commit") == commit:
            return earlier
        return None

    def end_deploy(self, target: str) -> None:
        """Clear the in-flight mark of `target` (the deploy finished and is recorded, or failed cleanly)."""
        path = self._inflight(target)
        if path.exists():
            path.unlink()

    def record_deploy(self, target: str, entry: LedgerEntry) -> TargetRecord:
        """Record that `target` now runs `entry.commit`; the old current becomes previous.

        Redeploying the commit that already runs keeps `previous` (and is how a retry stays idempotent).
        """
        old = self.read(target)
        same = old.current is not None and old.current.commit == entry.commit
        record = TargetRecord(
            target=target,
            current=entry,
            previous=old.previous if same else old.current,
            history=(*old.history, entry)[-_HISTORY_LIMIT:],
        )
        self._write(record)
        return record

    def record_rollback(self, target: str, entry: LedgerEntry) -> TargetRecord:
        """Record that `target` went back to `entry.commit` (empty commit: nothing runs now)."""
        old = self.read(target)
        restored = entry if entry.commit else None
        previous = _deployed_before(old.history, entry.commit) if restored else None
        record = TargetRecord(
            target=target,
            current=restored,
            previous=previous,
            history=(*old.history, entry)[-_HISTORY_LIMIT:],
        )
        self._write(record)
        return record


def _deployed_before(history: tuple[LedgerEntry, ...], commit: str) -> LedgerEntry | None:
    """The deploy that preceded the latest deploy of `commit` (another commit), if any."""
    deploys = [e for e in history if e.action == "deploy"]
    last = max((i for i, e in enumerate(deploys) if e.commit == commit), default=None)
    if last is None:
        return None
    return next((e for e in reversed(deploys[:last]) if e.commit != commit), None)
