"""The deployment ledger in the artifact store: one record per target, and the in-flight protocol.

One JSON document per target (`<store>/<pipeline>/ledger/<target>.json`), so parallel deploys of
different targets never write the same object. Rollback and `handsoff status` read it. What a record
holds and how a deploy or rollback changes it is `handsoff.model.records`.

In-flight protocol: a deploy marks its target (`<target>.inflight.json`) before it changes anything and
clears the mark once the ledger records the outcome. A mark left by an earlier try of the same run and
commit means that try was cut off mid-deploy (a killed worker or scheduler): the target's state is
unknown, so `begin_deploy` refuses to deploy blindly again.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from airflow.sdk import ObjectStoragePath

from handsoff.model.records import LedgerEntry, TargetRecord, now_iso


class DeployInterrupted(RuntimeError):
    """An earlier try of this deploy was cut off mid-deploy: the target's state is unknown."""

    def __init__(self, target: str, mark: dict[str, Any]) -> None:
        self.target = target
        self.mark = mark
        super().__init__(
            f"an earlier try of this deploy (started {mark.get('time')}) was interrupted, so the state of "
            f"{target} is unknown; not deploying again: the rollback restores what the ledger records"
        )


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

    def begin_deploy(self, target: str, run_id: str, commit: str) -> TargetRecord | None:
        """Start a deploy of `commit` to `target` for run `run_id`: the record as it was before, or None.

        None: this run already deployed that commit there (a retry after the ledger recorded it), so
        there is nothing to do. Raises DeployInterrupted when an earlier try of the same run and commit
        left its mark: it was cut off mid-deploy and the caller must not deploy blindly again.
        """
        record = self.read(target)
        current = record.current
        if current is not None and current.commit == commit and current.run_id == run_id:
            self.end_deploy(target)
            return None
        path = self._inflight(target)
        earlier = json.loads(path.read_text()) if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"run_id": run_id, "commit": commit, "time": now_iso()}))
        if earlier and earlier.get("run_id") == run_id and earlier.get("commit") == commit:
            raise DeployInterrupted(target, earlier)
        return record

    def end_deploy(self, target: str) -> None:
        """Clear the in-flight mark of `target` (the deploy finished and is recorded, or failed cleanly)."""
        path = self._inflight(target)
        if path.exists():
            path.unlink()

    def record_deploy(self, target: str, entry: LedgerEntry) -> TargetRecord:
        """Record that `target` now runs `entry.commit` and clear its in-flight mark."""
        record = self.read(target).deployed(entry)
        self._write(record)
        self.end_deploy(target)
        return record

    def record_rollback(self, target: str, entry: LedgerEntry) -> TargetRecord:
        """Record that `target` went back to `entry.commit` (empty commit: nothing runs now)."""
        record = self.read(target).rolled_back(entry)
        self._write(record)
        return record
