"""The Airflow plugin (`airflow.plugins` entry point); timetables and extra links are registered here."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class HandsoffPlugin(AirflowPlugin):
    """Registers handsoff's Airflow extensions."""

    name = "handsoff"
