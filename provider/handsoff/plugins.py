"""The Airflow plugin (`airflow.plugins` entry point); timetables and extra links are registered here."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from handsoff.links.aws import CloudWatchAlarmsLink, DeployedResourceLink
from handsoff.links.source import ArtifactLink, CommitLink
from handsoff.timetables.window import DeploymentWindowTimetable


class HandsoffPlugin(AirflowPlugin):
    """Registers handsoff's Airflow extensions."""

    name = "handsoff"
    timetables = [DeploymentWindowTimetable]
    operator_extra_links = [CloudWatchAlarmsLink(), DeployedResourceLink(), CommitLink(), ArtifactLink()]
