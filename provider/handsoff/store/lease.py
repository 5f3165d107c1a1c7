"""The pipeline's lease: while an on-demand rollback restores targets, no deployment changes them.

Deployment runs never deploy at the same time (`max_active_runs=1`), and within a run the automatic
rollback waits for every deploy (its plan runs ALL_DONE). The one other writer is the on-demand rollback:
its `stop_deployments` task takes the lease (`<store>/<pipeline>/lease.json`, a conditional write) before
it stops the running deployment, and its last task releases it. A deploy task checks the lease before it
changes anything: a deploy of a stopped run ends skipped, a deploy of any other run waits until the lease
is released (or expires: `until`, so a crashed rollback cannot hold the pipeline for ever).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from handsoff.store.objects import UNCHANGED, ObjectStore

#: how long a lease lasts unless renewed (a restore renews it as it goes)
LEASE_TTL = timedelta(hours=1)


class LeaseHeld(RuntimeError):
    """Another on-demand rollback holds the pipeline."""


class PipelineLease:
    """The lease of one pipeline in `store`."""

    def __init__(self, store: ObjectStore, pipeline: str) -> None:
        self.store = store
        self.key = f"{pipeline}/lease.json"

    def holder(self, now: datetime | None = None) -> dict[str, Any] | None:
        """The lease while it is held (None when free or expired)."""
        return _live(self.store.read(self.key).text, now or datetime.now(UTC))

    def take(
        self, holder: str, reason: str, stopped: list[str], ttl: timedelta = LEASE_TTL
    ) -> dict[str, Any]:
        """Hold the lease as rollback run `holder` that stops `stopped`; LeaseHeld if another one holds it."""
        now = datetime.now(UTC)

        def take(text: str | None) -> tuple[str, dict[str, Any]]:
            live = _live(text, now)
            if live is not None and live["holder"] != holder:
                raise LeaseHeld(
                    f"the pipeline is held by rollback run {live['holder']}: {live.get('reason')}"
                )
            kept = live.get("stopped", []) if live else []
            lease = {
                "holder": holder,
                "reason": reason,
                "since": live["since"] if live else now.isoformat(),
                "until": (now + ttl).isoformat(),
                "stopped": sorted({*kept, *stopped}),
            }
            return json.dumps(lease), lease

        return self.store.update(self.key, take)

    def release(self, holder: str) -> None:
        """Free the lease if `holder` holds it (a lease taken over by another run stays)."""

        def release(text: str | None) -> tuple[Any, None]:
            held = json.loads(text) if text else None
            return (None if held and held.get("holder") == holder else UNCHANGED), None

        self.store.update(self.key, release)


def _live(text: str | None, now: datetime) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        lease = json.loads(text)
        until = datetime.fromisoformat(lease["until"])
    except (ValueError, KeyError, TypeError):
        return None  # a damaged lease protects nothing; deploys go on and the next take rewrites it
    return lease if until > now else None
