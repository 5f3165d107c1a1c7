"""`handsoff status`: what every target of a pipeline runs now, since when, by which run, and before.

Read from the ledger (`handsoff.store.ledger`), in pipeline order (stage, wave, target). Targets that the
ledger knows but the spec no longer names come last, with stage and wave "-". Exit codes: 0, 1 ledger
unreadable, 2 usage, 3 unknown pipeline.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handsoff.cli.common import TriggerError, fail, find_pipeline, specs_dir
from handsoff.model.pipeline import Pipeline
from handsoff.model.records import LedgerEntry, TargetRecord

if TYPE_CHECKING:
    from handsoff.store.ledger import Ledger

NONE = "-"


@dataclass(frozen=True)
class TargetStatus:
    """One row: a target, where it sits in the pipeline, and its ledger record."""

    stage: str
    wave: str
    record: TargetRecord
    in_spec: bool = True

    @property
    def last(self) -> LedgerEntry | None:
        """What happened to the target last (a deploy, or a rollback; also a rollback to nothing)."""
        return self.record.history[-1] if self.record.history else self.record.current


def pipeline_status(pipeline: Pipeline, ledger: Ledger) -> list[TargetStatus]:
    """A row per target of `pipeline`, then the ledger's targets that are not in the spec."""
    rows = [
        TargetStatus(stage.name, wave.name, ledger.read(target.name))
        for stage in pipeline.stages
        for wave in stage.waves
        for target in wave.targets
    ]
    named = {row.record.target for row in rows}
    rows += [TargetStatus(NONE, NONE, record, False) for record in ledger.all() if record.target not in named]
    return rows


def _entry_json(entry: LedgerEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "commit": entry.commit or None,
        "since": entry.time,
        "run_id": entry.run_id,
        "action": entry.action,
    }


def status_json(pipeline: Pipeline, ledger_url: str, rows: list[TargetStatus]) -> dict[str, Any]:
    """The `--json` document."""
    targets = []
    for row in rows:
        current, last = row.record.current, row.last
        targets.append(
            {
                "stage": row.stage if row.in_spec else None,
                "wave": row.wave if row.in_spec else None,
                "target": row.record.target,
                "in_spec": row.in_spec,
                "commit": current.commit if current else None,
                "since": last.time if last else None,
                "run_id": last.run_id if last else None,
                "action": last.action if last else None,
                "artifact": current.artifact if current and current.artifact else None,
                "previous": _entry_json(row.record.previous),
            }
        )
    return {
        "pipeline": pipeline.id,
        "source": {"repo": pipeline.source.repo, "branch": pipeline.source.branch},
        "ledger": ledger_url,
        "targets": targets,
    }


def status_lines(pipeline: Pipeline, ledger_url: str, rows: list[TargetStatus]) -> list[str]:
    """The text table: STAGE WAVE TARGET COMMIT SINCE RUN BEFORE, "-" where nothing is known."""
    table = [("STAGE", "WAVE", "TARGET", "COMMIT", "SINCE", "RUN", "BEFORE")]
    for row in rows:
        current, last, previous = row.record.current, row.last, row.record.previous
        run = NONE
        if last is not None:
            run = last.run_id or NONE
            if last.action != "deploy":
                run += f" ({last.action})"
        table.append(
            (
                row.stage,
                row.wave,
                row.record.target + ("" if row.in_spec else " (not in the spec)"),
                current.commit[:12] if current and current.commit else NONE,
                last.time if last and last.time else NONE,
                run,
                previous.commit[:12] if previous and previous.commit else NONE,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    header = f"{pipeline.id}: {pipeline.source.repo} @ {pipeline.source.branch}; ledger {ledger_url}"
    return [
        header,
        *("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table),
    ]


def status_command(args: argparse.Namespace) -> int:
    """The pipeline's ledger as a table (or JSON); targets never deployed show "-"."""
    try:
        pipeline = find_pipeline(args.pipeline, specs_dir(args))
    except TriggerError as err:
        return fail("status", str(err), err.code)
    from handsoff.store.artifacts import store_root  # Airflow's ObjectStoragePath: only when needed
    from handsoff.store.ledger import Ledger

    try:
        ledger = Ledger(store_root(pipeline.artifact_store, pipeline.aws_conn_id), pipeline.id)
        rows = pipeline_status(pipeline, ledger)
    except Exception as err:  # the store may be remote: any I/O error, one line
        return fail("status", f"cannot read the ledger of {pipeline.id}: {err}", 1)
    if args.json:
        print(json.dumps(status_json(pipeline, str(ledger.base), rows), indent=2))
    else:
        print("\n".join(status_lines(pipeline, str(ledger.base), rows)))
    return 0
