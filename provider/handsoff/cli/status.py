"""`handsoff status`: what every target of a pipeline runs now, since when, by which run, and before.

Read from the ledger (`handsoff.store.ledger`), in pipeline order (stage, wave, target). Targets that the
ledger knows but the spec no longer names come last, with stage and wave "-". A target that a rollback
could not restore exactly now (what ran before is unknown, or its artifact is gone) is named below the
table. Exit codes: 0, 1 no ledger at the pipeline's store or one that cannot be read, 2 usage, 3 unknown
pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handsoff.cli.common import TriggerError, fail, find_pipeline, specs_dir
from handsoff.model.pipeline import Pipeline
from handsoff.model.records import LedgerEntry, TargetRecord
from handsoff.model.rollback import restore_problem

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
    #: why a rollback of the target would be refused now (None: fine)
    problem: str | None = None

    @property
    def last(self) -> LedgerEntry | None:
        """What happened to the target last (a deploy, or a rollback; also a rollback to nothing)."""
        return self.record.history[-1] if self.record.history else self.record.current


def pipeline_status(pipeline: Pipeline, ledger: Ledger) -> list[TargetStatus]:
    """A row per target of `pipeline`, then the ledger's targets that are not in the spec."""

    def stored(commit: str) -> bool:
        return ledger.store.read(f"{pipeline.id}/artifacts/{commit}/manifest.json").version is not None

    def row(stage: str, wave: str, record: TargetRecord, in_spec: bool = True) -> TargetStatus:
        return TargetStatus(stage, wave, record, in_spec, restore_problem(record, stored))

    rows = [
        row(stage.name, wave.name, ledger.read(target.name))
        for stage in pipeline.stages
        for wave in stage.waves
        for target in wave.targets
    ]
    named = {r.record.target for r in rows}
    return rows + [row(NONE, NONE, record, False) for record in ledger.all() if record.target not in named]


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
                "restore_problem": row.problem,
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
        current, last = row.record.current, row.last
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
                _running(current),
                last.time if last and last.time else NONE,
                run,
                _before(row.record),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    header = f"{pipeline.id}: {pipeline.source.repo} @ {pipeline.source.branch}; ledger {ledger_url}"
    warnings = [f"! {row.record.target}: {row.problem}" for row in rows if row.problem]
    return [
        header,
        *("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table),
        *warnings,
    ]


def _running(current: LedgerEntry | None) -> str:
    """What the target runs: a commit, "before handsoff" (rolled back past handsoff's first deploy), "-"."""
    if current is None:
        return NONE
    return current.commit[:12] if current.commit else "before handsoff"


def _before(record: TargetRecord) -> str:
    """What the target ran before: a commit, "before handsoff" (what its deployer saw there), or "-"."""
    previous, current = record.previous, record.current
    if previous is not None:
        return previous.commit[:12] if previous.commit else "before handsoff"
    if current is not None and current.before_handsoff() is not None:
        return "before handsoff"
    return NONE


def status_command(args: argparse.Namespace) -> int:
    """The pipeline's ledger as a table (or JSON); targets never deployed show "-"."""
    try:
        pipeline = find_pipeline(args.pipeline, specs_dir(args))
    except TriggerError as err:
        return fail("status", str(err), err.code)
    from handsoff.store.ledger import Ledger  # an S3 store imports the Amazon provider when first read
    from handsoff.store.objects import object_store

    try:
        ledger = Ledger(object_store(pipeline.artifact_store, pipeline.aws_conn_id), pipeline.id)
        if not ledger.exists():
            return fail("status", _no_ledger(pipeline, ledger.location), 1)
        rows = pipeline_status(pipeline, ledger)
    except Exception as err:  # the store may be remote: any I/O error, one line
        return fail("status", f"cannot read the ledger of {pipeline.id}: {err}", 1)
    if args.json:
        print(json.dumps(status_json(pipeline, ledger.location, rows), indent=2))
    else:
        print("\n".join(status_lines(pipeline, ledger.location, rows)))
    return 0


def _no_ledger(pipeline: Pipeline, location: str) -> str:
    """No ledger where the pipeline's store is: never deployed through it, or another store is meant."""
    where = (
        "its spec's artifacts.store"
        if pipeline.artifact_store
        else f"the default store under AIRFLOW_HOME={os.environ.get('AIRFLOW_HOME') or '~/airflow (unset)'}"
    )
    return (
        f"no ledger found at {location} ({where}): nothing of {pipeline.id} was ever deployed through this "
        "store, or Airflow's AIRFLOW_HOME (or the store) is another one"
    )
