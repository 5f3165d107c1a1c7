"""How long a deferred task may wait: the time it expects to wait plus one margin, for all of them.

The margin covers a triggerer that is slow to start the trigger or to hand its event back; past it the
task fails with Airflow's deferral timeout rather than waiting for ever.
"""

from __future__ import annotations

from datetime import timedelta

DEFERRAL_MARGIN = timedelta(minutes=10)


def deferral_timeout(expected: timedelta) -> timedelta:
    """The `timeout` of a deferral (and a sensor) that expects to wait `expected` at most."""
    return expected + DEFERRAL_MARGIN
