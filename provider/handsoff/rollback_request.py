"""An on-demand rollback request: which targets, newest wave first, and what each goes back to.

Pure functions shared by the rollback DAG's `plan` task and `handsoff rollback` (which validates names
locally before triggering). A pipeline's layout is a list of waves in deployment order, each
{"stage", "wave", "targets": [{"fields": {"name", ...}, "deploy", "alarms"}]}. No Airflow here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handsoff.ledger import LedgerEntry, TargetRecord
    from handsoff.model import Pipeline

SCOPES = ("target", "wave", "stage", "all")
Layout = Sequence[Mapping[str, Any]]


class RollbackRequestError(ValueError):
    """A rollback request that cannot be carried out as asked; nothing was changed."""


@dataclass(frozen=True)
class Request:
    """What the on-call engineer asked for (the rollback DAG's params)."""

    scope: str
    targets: tuple[str, ...] = ()
    wave: str | None = None
    stage: str | None = None
    to: str | None = None
    reason: str = ""
    requested_by: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Request:
        """From the DAG params (empty strings count as not given)."""
        return cls(
            scope=params.get("scope") or "",
            targets=tuple(t for t in params.get("targets") or () if t),
            wave=params.get("wave") or None,
            stage=params.get("stage") or None,
            to=(params.get("to") or "").strip() or None,
            reason=(params.get("reason") or "").strip(),
            requested_by=(params.get("requested_by") or "").strip(),
        )


def pipeline_layout(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The layout of a pipeline, in deployment order (JSON-serialisable: it becomes operator arguments)."""
    from handsoff.factory import alarm_map

    return [
        {
            "stage": stage.name,
            "wave": wave.name,
            "targets": [
                {
                    "fields": dict(t.fields),
                    "deploy": t.deployer.to_dict(),
                    "alarms": alarm_map(t.rollback_alarms),
                }
                for t in wave.targets
            ],
        }
        for stage in pipeline.stages
        for wave in stage.waves
    ]


def wave_key(wave: Mapping[str, Any]) -> str:
    """`stage.wave`: the wave's task group path in both DAGs."""
    return f"{wave['stage']}.{wave['wave']}"


def choose(layout: Layout, request: Request) -> list[tuple[int, list[str]]]:
    """(wave index, target names) to roll back, newest wave first; RollbackRequestError on a bad request."""
    if request.scope not in SCOPES:
        raise RollbackRequestError(f"scope must be one of {', '.join(SCOPES)}, not {request.scope!r}")
    if not request.reason:
        raise RollbackRequestError("a rollback needs a reason (--reason): the ledger records why")
    if request.scope == "target":
        return _by_target(layout, request.targets)
    if request.scope == "wave":
        indexes = [_find_wave(layout, request.wave)]
    elif request.scope == "stage":
        stages = list(dict.fromkeys(w["stage"] for w in layout))
        if request.stage not in stages:
            raise RollbackRequestError(f"unknown stage {request.stage!r}; stages: {', '.join(stages)}")
        indexes = [i for i, w in enumerate(layout) if w["stage"] == request.stage]
    else:
        indexes = list(range(len(layout)))
    return [(i, [t["fields"]["name"] for t in layout[i]["targets"]]) for i in sorted(indexes, reverse=True)]


def _by_target(layout: Layout, names: Sequence[str]) -> list[tuple[int, list[str]]]:
    if not names:
        raise RollbackRequestError("scope 'target' needs at least one target name")
    where = {t["fields"]["name"]: i for i, w in enumerate(layout) for t in w["targets"]}
    unknown = [n for n in names if n not in where]
    if unknown:
        raise RollbackRequestError(f"unknown target(s) {', '.join(unknown)}; targets: {', '.join(where)}")
    chosen: dict[int, list[str]] = {}
    for name in dict.fromkeys(names):
        chosen.setdefault(where[name], []).append(name)
    return sorted(chosen.items(), reverse=True)


def _find_wave(layout: Layout, name: str | None) -> int:
    """A wave by `wave` or `stage.wave` (a wave name used in two stages needs the stage)."""
    hits = [i for i, w in enumerate(layout) if name in (w["wave"], wave_key(w))]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(wave_key(w) for w in layout)
    if not hits:
        raise RollbackRequestError(f"unknown wave {name!r}; waves: {known}")
    raise RollbackRequestError(f"wave {name!r} is in several stages; name it as STAGE.WAVE ({known})")


def restore_point(record: TargetRecord, to: str | None) -> LedgerEntry | None:
    """What `record.target` goes back to: the ledger entry of `to` there, else its previous version.

    None: nothing runs there (never deployed, or already removed), so there is nothing to roll back.
    RollbackRequestError when `to` was never deployed there or no earlier version is known.
    """
    if to is not None:
        return deployed_entry(record, to)
    current = record.current
    if current is None:
        return None
    if record.previous is not None:
        return record.previous
    before = current.detail.get("before")
    if before:
        from handsoff.ledger import LedgerEntry

        return LedgerEntry(
            commit="", run_id="", time="", note="as before handsoff's first deploy", detail=before
        )
    raise RollbackRequestError(
        f"target {record.target} has no earlier version in the ledger (it runs {current.commit[:12]}, "
        "the first "
        "version handsoff deployed there); nothing to go back to"
    )


def deployed_entry(record: TargetRecord, to: str) -> LedgerEntry:
    """The latest deploy of commit `to` (full SHA or an abbreviation) on the target, from its history."""
    matches = [e for e in record.history if e.action == "deploy" and e.commit and e.commit.startswith(to)]
    commits = {e.commit for e in matches}
    if not matches:
        raise RollbackRequestError(
            f"commit {to} was never deployed to target {record.target} (see `handsoff status`); "
            "--to must name a version that ran there"
        )
    if len(commits) > 1:
        raise RollbackRequestError(
            f"{to} is ambiguous on target {record.target}: {', '.join(sorted(commits))}"
        )
    return matches[-1]
