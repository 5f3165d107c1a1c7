"""Alarm verdicts: what a bake or blocker decides from alarm states, metric sums and the clock.

The same functions decide in the sensors' `poke` and the triggers' `watch`; the sensor and trigger tests
run them against moto, these check the rules themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from handsoff.utils.alarms import (
    BLOCKED,
    CLEAR,
    DONE,
    NO_EVIDENCE,
    WAIT,
    blocker_verdict,
    evidence_verdict,
    firing,
    firing_message,
    no_evidence_message,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("alarm", ["a-alarm", "c-insufficient"]), ("ok", ["a-alarm"])],
)
def test_firing_follows_the_insufficient_data_policy(policy, expected):
    states = {"c-insufficient": "INSUFFICIENT_DATA", "a-alarm": "ALARM", "b-ok": "OK"}
    assert firing(states, policy) == expected


def test_firing_rejects_an_unknown_policy():
    with pytest.raises(ValueError, match="insufficient_data"):
        firing({}, "ignore")


def test_the_firing_message_names_each_alarm_its_state_and_region():
    states = {"us-east-1": {"a": "ALARM", "b": "OK"}, "": {"c": "INSUFFICIENT_DATA"}}

    names, message = firing_message("rollback", states, "alarm")

    assert names == ["a", "c"]
    assert message == (
        "rollback alarm a is in ALARM (us-east-1); rollback alarm c is in INSUFFICIENT_DATA, treated as ALARM"
    )
    assert firing_message("rollback", states, "ok") == (["a"], "rollback alarm a is in ALARM (us-east-1)")


@pytest.mark.parametrize(
    ("seen", "now", "expected"),
    [
        (100, NOW, DONE),
        (150, NOW + timedelta(hours=9), DONE),  # enough evidence counts even late
        (99, NOW, WAIT),
        (99, NOW + timedelta(hours=1), NO_EVIDENCE),  # at the max bake: no more waiting
    ],
)
def test_evidence_decides_once_the_bake_time_is_over(seen, now, expected):
    assert evidence_verdict(seen, 100, now, max_until=NOW + timedelta(hours=1)) == expected


def test_the_no_evidence_message_names_the_metric_and_its_dimensions():
    datapoints = {"namespace": "AWS/Lambda", "metric": "Invocations", "count": 100, "dimensions": {"F": "x"}}

    assert no_evidence_message(datapoints, 3, "the max bake 3h") == (
        "no evidence: AWS/Lambda Invocations sum 3 < 100 by the max bake 3h (F=x)"
    )


def test_a_blocker_is_clear_waits_or_is_blocked_at_its_timeout():
    timeout_at = NOW + timedelta(hours=2)
    firing_states = {"": {"sev2": "ALARM", "quiet": "OK"}}

    clear = blocker_verdict({"": {"quiet": "OK"}}, "alarm", NOW, timeout_at)
    waiting = blocker_verdict(firing_states, "alarm", NOW, timeout_at)
    blocked = blocker_verdict(firing_states, "alarm", timeout_at, timeout_at)

    assert (clear.outcome, clear.alarms) == (CLEAR, [])
    assert (waiting.outcome, waiting.alarms, waiting.message) == (
        WAIT,
        ["sev2"],
        "blocker alarm sev2 is in ALARM",
    )
    assert blocked.outcome == BLOCKED
    assert blocker_verdict({"": {"s": "INSUFFICIENT_DATA"}}, "ok", NOW, timeout_at).outcome == CLEAR
