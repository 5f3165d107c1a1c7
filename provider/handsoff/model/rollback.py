"""Rollback rules: which waves a failed run rolls back, which targets a request names, and what each
target goes back to. One decision for automatic and on-demand rollback; pure functions, no Airflow.

Automatic: `plan_rollback` picks the waves from the run's failed tasks; `automatic_restore` decides per
target. On demand (the rollback DAG's `plan` task and `handsoff rollback`, which validates names locally
before triggering): `choose` picks the waves and targets, `requested_restore` decides per target. Both
go back to `earlier_version`: the previous deploy in the ledger, else what ran before handsoff's first.

A pipeline's layout is a list of waves in deployment order, each
{"stage", "wave", "targets": [{"fields": {"name", ...}, "deploy", "alarms"}]}.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handsoff.model.pipeline import Pipeline, alarm_map
from handsoff.model.records import BEFORE_HANDSOFF, LedgerEntry, TargetRecord

SCOPES = ("target", "wave", "stage", "all")
Layout = Sequence[Mapping[str, Any]]


class RollbackRequestError(ValueError):
    """A rollback request that cannot be carried out as asked; nothing was changed."""


class RollbackRefused(RollbackRequestError):
    """A target that cannot be restored exactly (what ran before is unknown or gone); left as it is."""


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


def with_ledger_targets(layout: Layout, records: Sequence[TargetRecord]) -> list[dict[str, Any]]:
    """`layout` plus the ledger's targets that the spec no longer names (renamed or removed), each in
    the wave its current deploy recorded (a wave of its own when the spec has no such wave), with the
    deployer and fields it was deployed with: the ledger alone is enough to roll them back."""
    waves = [dict(w, targets=list(w["targets"])) for w in layout]
    named = {t["fields"]["name"] for w in waves for t in w["targets"]}
    for record in records:
        current = record.current
        if record.target in named or current is None or not current.config:
            continue
        config = current.config
        target = {"fields": dict(config.get("target") or {"name": record.target}), "deploy": config["deploy"]}
        target["fields"]["name"] = record.target
        target["alarms"] = {}
        key = {"stage": current.stage or "-", "wave": current.wave or "-"}
        wave = next((w for w in waves if wave_key(w) == wave_key(key)), None)
        if wave is None:
            wave = {**key, "targets": []}
            waves.append(wave)
        wave["targets"].append(target)
    return waves


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


@dataclass(frozen=True)
class Restore:
    """What a rollback does to one target: `change` it (to `to`; None: remove what runs) or leave it."""

    change: bool
    to: LedgerEntry | None = None
    why: str = ""


def earlier_version(record: TargetRecord) -> LedgerEntry | None:
    """What ran on the target before its current version: the previous deploy, else what ran before
    handsoff's first deploy (the deployer's `before`; `absent` when nothing did); None when unknown."""
    if record.previous is not None:
        return record.previous
    return record.current.before_handsoff() if record.current is not None else None


def _unknown(target: str, running: str) -> RollbackRefused:
    return RollbackRefused(
        f"cannot roll back target {target}: it runs {running}, the first version handsoff deployed there, "
        "and what ran before is unknown (give a command deployer a `current` command that prints what runs "
        "there, so that handsoff records it); not removing what handsoff did not create: left as it is"
    )


def restore_problem(record: TargetRecord, artifact_stored: Callable[[str], bool]) -> str | None:
    """Why a rollback of the target would be refused now (None: it can be rolled back, or runs nothing).

    `artifact_stored(commit)` says whether the store still holds a commit's artifact (a command deployer
    restores from it; cloud deployers restore from what the ledger recorded).
    """
    current = record.current
    if current is None:
        return None
    earlier = earlier_version(record)
    if earlier is None:
        return "what ran before handsoff's first deploy is unknown: a rollback would refuse"
    kind = (earlier.config.get("deploy") or current.config.get("deploy") or {}).get("type")
    if earlier.commit and kind == "command" and not artifact_stored(earlier.commit):
        return f"the artifact of {earlier.commit[:12]}, its earlier version, is gone: a rollback would refuse"
    return None


def automatic_restore(
    record: TargetRecord, run_id: str, deploy_failed: bool, mark_before: dict[str, Any] | None = None
) -> Restore:
    """What run `run_id`'s automatic rollback does to the target of `record`.

    A target this run deployed goes back to its earlier version. A target whose deploy failed part-way,
    before the ledger recorded it, gets back what the ledger says runs there, or on its first deploy what
    the deploy saw there before it changed anything (`mark_before`, from its in-flight mark). Raises
    RollbackRefused when that is not known: handsoff never removes what it did not create.
    """
    current = record.current
    mine = current is not None and current.run_id == run_id
    if mine and current.action == "rollback":
        return Restore(False, why="already rolled back by this run")
    if mine:
        earlier = earlier_version(record)
        if earlier is None:
            raise _unknown(record.target, current.commit[:12])
        return Restore(True, earlier)
    if not deploy_failed:
        return Restore(False, why="not changed by this run")
    if current is not None:
        return Restore(True, current, why="its deploy failed part-way: back to what the ledger records")
    if mark_before is None:
        raise _unknown(record.target, "what its failed first deploy left")
    before = LedgerEntry(commit="", run_id="", time="", note=BEFORE_HANDSOFF, detail=mark_before)
    return Restore(True, before, why="its first deploy failed part-way: back to what ran before")


def requested_restore(record: TargetRecord, to: str | None, run_id: str) -> Restore:
    """What an on-demand rollback (run `run_id`) does to the target: go back to commit `to` (it must have
    run there), else to its earlier version. RollbackRequestError when that is not possible."""
    current = record.current
    if current is not None and current.run_id == run_id and current.action == "rollback":
        return Restore(False, why="already rolled back by this run")
    restore = restore_point(record, to)
    if current is None:
        return Restore(False, why="nothing runs there; left as it is")
    if restore is not None and restore.commit and restore.commit == current.commit:
        return Restore(False, why=f"already runs {current.commit[:12]}; left as it is")
    return Restore(True, restore)


def restore_point(record: TargetRecord, to: str | None) -> LedgerEntry | None:
    """What `record.target` goes back to: the ledger entry of `to` there, else its earlier version.

    None: nothing runs there (never deployed, or already removed), so there is nothing to roll back.
    RollbackRequestError when `to` was never deployed there or no earlier version is known.
    """
    if to is not None:
        return deployed_entry(record, to)
    current = record.current
    if current is None:
        return None
    earlier = earlier_version(record)
    if earlier is not None:
        return earlier
    raise RollbackRequestError(
        f"target {record.target} has no earlier version in the ledger (it runs {current.commit[:12]}, "
        "the first version handsoff deployed there, and what ran before is unknown); nothing to go back to"
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


def failed_tasks(states: Mapping[str, Any]) -> set[str]:
    """Task ids in state failed (mapped task keys `<task_id>_<map_index>` fold into their task id)."""
    failed = set()
    for key, state in states.items():
        if state == "failed":
            base, _, index = key.rpartition("_")
            failed.add(base if index.isdigit() and base else key)
            failed.add(key)
    return failed


def plan_rollback(
    scope: str, waves: Sequence[Mapping[str, Any]], stage_tasks: Mapping[str, Sequence[str]], failed: set[str]
) -> list[int]:
    """Indexes of the waves to roll back, newest first, for the earliest failure in pipeline order.

    A failed deploy or wave bake points at its wave; failed stage tests or stage bake at the stage's waves.
    `scope` "wave": just those; "all": every wave up to there.
    """
    for index, wave in enumerate(waves):
        if failed & set(wave["failure_tasks"]):
            hit = [index]
        elif _last_of_stage(waves, index) and failed & set(stage_tasks.get(wave["stage"], ())):
            hit = [i for i, w in enumerate(waves) if w["stage"] == wave["stage"]]
        else:
            continue
        chosen = range(max(hit) + 1) if scope == "all" else hit
        return sorted(chosen, reverse=True)
    return []


def _last_of_stage(waves: Sequence[Mapping[str, Any]], index: int) -> bool:
    return index + 1 == len(waves) or waves[index + 1]["stage"] != waves[index]["stage"]
