"""The deployment ledger in the artifact store: one record per target, and the in-flight protocol.

One JSON document per target (`<store>/<pipeline>/ledger/<target>.json`), so parallel deploys of different
targets never write the same object; every change is a conditional write (`handsoff.store.objects`), so
two writers of one target never lose an update. What a record holds and how a deploy or rollback changes it
is `handsoff.model.records`.

In-flight protocol: before a deploy changes anything it marks its target (`<target>.inflight.json`, one
atomic write) with the run, the commit and what runs there now (`before`, as the deployer sees it). The
ledger's record clears the mark. A deploy that fails in its own process leaves the mark as `failed`: a
retry may deploy again, and the automatic rollback knows what ran before. A mark still `deploying` when the
same run and commit try again means the earlier try was cut off mid-deploy (a killed worker or scheduler):
the target's state is unknown, so `begin_deploy` refuses to deploy blindly again.
"""

from __future__ import annotations

import json
from typing import Any

from handsoff.model.records import LedgerEntry, TargetRecord, now_iso
from handsoff.store.objects import UNCHANGED, ObjectStore

_MARK = ".inflight.json"
DEPLOYING, FAILED = "deploying", "failed"


class DeployInterrupted(RuntimeError):
    """An earlier try of this deploy was cut off mid-deploy: the target's state is unknown."""

    def __init__(self, target: str, mark: dict[str, Any]) -> None:
        self.target = target
        self.mark = mark
        super().__init__(
            f"an earlier try of this deploy (started {mark.get('time')}) was interrupted, so the state of "
            f"{target} is unknown; not deploying again: the rollback restores what the ledger records"
        )


class LedgerDamaged(RuntimeError):
    """A ledger document that does not parse: named with its target, its location and the fix."""

    def __init__(self, location: str, target: str, error: Exception) -> None:
        super().__init__(
            f"the ledger of target {target} is damaged: {location} does not parse ({error}). handsoff "
            "changes nothing on that target until it is repaired: restore the document from the store's "
            "versioning or backup, or delete it once you know what runs there (the target then counts as "
            "never deployed by handsoff)"
        )


class Ledger:
    """The ledger of one pipeline in `store`."""

    def __init__(self, store: ObjectStore, pipeline: str) -> None:
        self.store = store
        self.folder = f"{pipeline}/ledger"

    @property
    def location(self) -> str:
        """Where the ledger is (for messages and `handsoff status`)."""
        return self.store.location(self.folder)

    def exists(self) -> bool:
        """Whether anything was ever recorded in this ledger."""
        return bool(self.store.names(self.folder))

    def _key(self, target: str) -> str:
        return f"{self.folder}/{target}.json"

    def _mark_key(self, target: str) -> str:
        return f"{self.folder}/{target}{_MARK}"

    def _parse(self, target: str, text: str | None) -> TargetRecord:
        if text is None:
            return TargetRecord(target=target)
        try:
            record = TargetRecord.from_json(text)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise LedgerDamaged(self.store.location(self._key(target)), target, err) from None
        if record.target != target:
            raise LedgerDamaged(self.store.location(self._key(target)), target, ValueError("another target"))
        return record

    def read(self, target: str) -> TargetRecord:
        """The record of `target` (empty when it was never deployed); LedgerDamaged when unreadable."""
        return self._parse(target, self.store.read(self._key(target)).text)

    def targets(self) -> list[str]:
        """Every target the ledger has a record of, sorted."""
        return [
            n[: -len(".json")]
            for n in self.store.names(self.folder)
            if n.endswith(".json") and _MARK not in n
        ]

    def all(self) -> list[TargetRecord]:
        """Every target's record, sorted by target name."""
        return [self.read(name) for name in self.targets()]

    def _change(self, target: str, how: str, entry: LedgerEntry) -> TargetRecord:
        def change(text: str | None) -> tuple[str, TargetRecord]:
            record = getattr(self._parse(target, text), how)(entry)
            return record.to_json(), record

        return self.store.update(self._key(target), change)

    def record_deploy(self, target: str, entry: LedgerEntry) -> TargetRecord:
        """Record that `target` now runs `entry.commit` and clear its in-flight mark."""
        record = self._change(target, "deployed", entry)
        self.end_deploy(target)
        return record

    def record_rollback(self, target: str, entry: LedgerEntry) -> TargetRecord:
        """Record that `target` went back to `entry` (see TargetRecord.rolled_back); clears any mark."""
        record = self._change(target, "rolled_back", entry)
        self.end_deploy(target)
        return record

    def record_event(self, target: str, entry: LedgerEntry) -> TargetRecord:
        """Add `entry` to the target's history without changing what it runs."""
        return self._change(target, "noted", entry)

    # --- the in-flight protocol ------------------------------------------------------------------------

    def mark(self, target: str) -> dict[str, Any] | None:
        """The in-flight mark of `target` (None: no deploy in flight or failed); LedgerDamaged if damaged."""
        text = self.store.read(self._mark_key(target)).text
        return None if text is None else self._mark(target, text)

    def _mark(self, target: str, text: str) -> dict[str, Any]:
        try:
            mark = json.loads(text)
            if not isinstance(mark, dict):
                raise ValueError("not an object")
        except ValueError as err:
            raise LedgerDamaged(self.store.location(self._mark_key(target)), target, err) from None
        return mark

    def begin_deploy(
        self,
        target: str,
        run_id: str,
        commit: str,
        before: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> TargetRecord | None:
        """Start a deploy of `commit` to `target` for run `run_id`: the record as it was before, or None.

        None: this run already deployed that commit there (a retry after the ledger recorded it), so
        there is nothing to do. Raises DeployInterrupted when an earlier try of the same run and commit
        was cut off mid-deploy. `before` (what runs there now) and `config` (where and how this deploy
        changes it) are kept in the mark for the rollback.
        """
        record = self.read(target)
        current = record.current
        if current is not None and current.commit == commit and current.run_id == run_id:
            self.end_deploy(target)
            return None

        def claim(text: str | None) -> tuple[str, None]:
            earlier = self._mark(target, text) if text is not None else None
            ours = earlier and earlier.get("run_id") == run_id and earlier.get("commit") == commit
            if ours and earlier.get("state", DEPLOYING) == DEPLOYING:
                raise DeployInterrupted(target, earlier)
            kept = earlier.get("before") if ours else None  # a retry: what ran before the first try
            mark = {"run_id": run_id, "commit": commit, "time": now_iso(), "state": DEPLOYING}
            mark["before"] = kept if kept is not None else before
            if config is not None:
                mark["config"] = config
            return json.dumps(mark), None

        self.store.update(self._mark_key(target), claim)
        return record

    def fail_deploy(self, target: str) -> None:
        """This process's deploy of `target` failed cleanly: a retry may deploy, the mark keeps `before`."""

        def failed(text: str | None) -> tuple[Any, None]:
            if text is None:
                return UNCHANGED, None
            return json.dumps({**self._mark(target, text), "state": FAILED}), None

        self.store.update(self._mark_key(target), failed)

    def end_deploy(self, target: str) -> None:
        """Clear the in-flight mark of `target` (the ledger records what runs there)."""
        self.store.delete(self._mark_key(target))
