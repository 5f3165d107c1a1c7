"""Alarm verdicts: what a bake or a blocker decides from alarm states, metric sums and the clock.

Written once for both ways a bake or blocker waits: the sensors' `poke` (in a worker) and the triggers'
`watch` (in the triggerer). Pure functions over what was read; the reading is the caller's.

`alarms` arguments map a region ("" for the connection's) to a list of alarm names; `datapoints` is
{namespace, metric, count, dimensions?, region?, since?} (the `min_datapoints` evidence of a bake).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

INSUFFICIENT_DATA_POLICIES = ("alarm", "ok")
_DATAPOINT_KEYS = {"namespace", "metric", "dimensions", "count", "region", "since"}
#: the outcomes of `evidence_verdict` and `blocker_verdict`
DONE, WAIT, NO_EVIDENCE = "done", "wait", "no_evidence"
CLEAR, BLOCKED = "clear", "blocked"


def check_policy(insufficient_data: str) -> None:
    """Reject an unknown INSUFFICIENT_DATA policy."""
    if insufficient_data not in INSUFFICIENT_DATA_POLICIES:
        raise ValueError(
            f"insufficient_data must be one of {INSUFFICIENT_DATA_POLICIES}: {insufficient_data!r}"
        )


def firing(states: Mapping[str, str], insufficient_data: str) -> list[str]:
    """Names whose state counts as ALARM; INSUFFICIENT_DATA counts when the policy is "alarm"."""
    check_policy(insufficient_data)
    bad = {"ALARM", "INSUFFICIENT_DATA"} if insufficient_data == "alarm" else {"ALARM"}
    return sorted(name for name, state in states.items() if state in bad)


def firing_message(
    kind: str, states: Mapping[str, Mapping[str, str]], insufficient_data: str
) -> tuple[list[str], str]:
    """Names of the alarms that count as ALARM under the policy, and a message naming each with its state.

    `states` maps a region to {alarm name: state}; `kind` ("rollback", "blocker") leads each part.
    """
    parts, names = [], set()
    for region, region_states in states.items():
        for name in firing(region_states, insufficient_data):
            state = region_states[name]
            note = ", treated as ALARM" if state == "INSUFFICIENT_DATA" else ""
            where = f" ({region})" if region else ""
            parts.append(f"{kind} alarm {name} is in {state}{note}{where}")
            names.add(name)
    return sorted(names), "; ".join(parts)


def evidence_verdict(seen: float, count: float, now: datetime, max_until: datetime) -> str:
    """After the bake time, with `seen` of the `count` datapoints it needs: DONE once reached,
    NO_EVIDENCE past `max_until`, else WAIT."""
    if seen >= count:
        return DONE
    return NO_EVIDENCE if now >= max_until else WAIT


@dataclass(frozen=True)
class BlockerVerdict:
    """CLEAR (no blocker counts as ALARM), BLOCKED (still, at the timeout) or WAIT; the firing alarms."""

    outcome: str
    alarms: list[str]
    message: str


def blocker_verdict(
    states: Mapping[str, Mapping[str, str]], insufficient_data: str, now: datetime, timeout_at: datetime
) -> BlockerVerdict:
    """What a blocker decides from one read of its alarms at `now`."""
    names, message = firing_message("blocker", states, insufficient_data)
    if not names:
        return BlockerVerdict(CLEAR, [], message)
    return BlockerVerdict(BLOCKED if now >= timeout_at else WAIT, names, message)


def parse_deadline(value: str, name: str) -> datetime:
    """A time-zone-aware datetime from an ISO 8601 string; ValueError naming `name` otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an ISO 8601 timestamp: {value!r}") from err
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone: {value!r}")
    return moment


def check_alarms(alarms: Any) -> None:
    """`alarms` maps a region ("" for the connection's) to a list of alarm names."""
    if not isinstance(alarms, Mapping) or not all(
        isinstance(region, str)
        and isinstance(names, list | tuple)
        and all(n and isinstance(n, str) for n in names)
        for region, names in alarms.items()
    ):
        raise ValueError(f"alarms must map a region to a list of alarm names: {alarms!r}")


def check_datapoints(datapoints: Any, *, need_since: bool) -> None:
    """{namespace, metric, count, dimensions?: {k: v}, region?, since (ISO; the triggers need it)}."""
    if not isinstance(datapoints, Mapping):
        raise ValueError(f"datapoints must be a mapping: {datapoints!r}")
    required = {"namespace", "metric", "count"} | ({"since"} if need_since else set())
    problems = [f"missing {key}" for key in sorted(required - datapoints.keys())]
    problems += [f"unknown key {key}" for key in sorted(datapoints.keys() - _DATAPOINT_KEYS)]
    count = datapoints.get("count")
    if "count" in datapoints and (
        isinstance(count, bool) or not isinstance(count, int | float) or count <= 0
    ):
        problems.append(f"count must be a positive number, not {count!r}")
    if not isinstance(datapoints.get("dimensions", {}), Mapping):
        problems.append("dimensions must map a dimension name to its value")
    if problems:
        raise ValueError(f"datapoints: {'; '.join(problems)}: {dict(datapoints)!r}")
    if "since" in datapoints:
        parse_deadline(datapoints["since"], "datapoints.since")


def metric_label(datapoints: Mapping[str, Any]) -> str:
    """``AWS/Lambda Invocations`` (for messages)."""
    return f"{datapoints['namespace']} {datapoints['metric']}"


def dimensions_label(datapoints: Mapping[str, Any]) -> str:
    """`` (FunctionName=orders)``, or "" without dimensions (for messages)."""
    dims = ", ".join(f"{k}={v}" for k, v in sorted(datapoints.get("dimensions", {}).items()))
    return f" ({dims})" if dims else ""


def no_evidence_message(datapoints: Mapping[str, Any], seen: float, by: str) -> str:
    """``no evidence: AWS/Lambda Invocations sum 3 < 100 by <by> (FunctionName=orders)``."""
    return (
        f"no evidence: {metric_label(datapoints)} sum {seen:g} < {datapoints['count']:g} by {by}"
        f"{dimensions_label(datapoints)}"
    )
