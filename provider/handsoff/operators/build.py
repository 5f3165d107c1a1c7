"""The build task: build the commit once, check coverage, store the artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from handsoff.hooks.shell import CommandFailed, handsoff_env, run_command
from handsoff.links.source import ArtifactLink
from handsoff.model.durations import parse_duration
from handsoff.operators.base import HandsoffOperator
from handsoff.store.artifacts import StoredArtifact

if TYPE_CHECKING:
    from airflow.sdk import Context


class BuildArtifactOperator(HandsoffOperator):
    """Run the build steps in order in a clean checkout, gate on coverage, store the artifact once.

    When the store already holds a complete artifact of the commit, nothing is rebuilt.
    """

    ui_color = "#fff3d6"
    operator_extra_links = (ArtifactLink(),)

    def __init__(
        self,
        *,
        steps: list[dict[str, Any]],
        artifact: str,
        coverage: dict[str, Any] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.steps = steps
        self.artifact = artifact
        self.coverage = coverage

    def execute(self, context: Context) -> str:
        stored = self.artifacts.find(self.commit)
        if stored is not None:
            self.log.info(
                "Commit %s is already built: %s (sha256 %s)", self.commit[:12], stored.uri, stored.sha256
            )
            self._persist_link(context, stored)
            return stored.uri
        env = handsoff_env(pipeline=self.pipeline, commit=self.commit, run_id=context["run_id"])
        with self.workspace() as tmp:
            checkout = self.git.checkout(self.commit, tmp / "src")
            try:
                for step in self.steps:
                    self.log.info("Build step %s: %s", step["name"], step["command"])
                    timeout = parse_duration(step["timeout"]) if step.get("timeout") else None
                    run_command(
                        f"build step {step['name']}", step["command"], env=env, cwd=checkout, timeout=timeout
                    )
                if self.coverage:
                    self._check_coverage(checkout, env)
            except CommandFailed as err:
                raise AirflowFailException(str(err)) from err
            output = _artifact_file(checkout, self.artifact)
            try:
                stored = self.artifacts.put(self.commit, output)
            except OSError as err:
                raise AirflowFailException(f"storing the artifact failed: {err}") from err
        self.log.info("Stored %s (%d bytes, sha256 %s)", stored.uri, stored.size, stored.sha256)
        self._persist_link(context, stored)
        return stored.uri

    def _persist_link(self, context: Context, stored: StoredArtifact) -> None:
        """The Artifact link: the object in the S3 console (in the connection's region), or the file."""
        region = None
        if stored.uri.startswith("s3"):
            try:
                from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

                region = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="s3").conn_region_name
            except Exception as err:  # the link is a convenience: never fail the build for it
                self.log.warning("No region for the artifact link: %s", err)
        ArtifactLink.persist(context, uri=stored.uri, region=region)

    def _check_coverage(self, checkout: Path, env: dict[str, str]) -> None:
        cov = self.coverage or {}
        run_command("coverage", cov["command"], env=env, cwd=checkout)
        report = checkout / cov.get("report", "coverage.json")
        try:
            percent = float(json.loads(report.read_text())["totals"]["percent_covered"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise AirflowFailException(
                f"coverage report {report.name} is missing or unreadable: {err}"
            ) from err
        minimum = float(cov["min_percent"])
        if percent < minimum:
            raise AirflowFailException(f"coverage {percent:.1f}% is below the minimum {minimum:g}%")
        self.log.info("Coverage %.1f%% (minimum %g%%)", percent, minimum)


def _artifact_file(checkout: Path, relative: str) -> Path:
    """The built artifact, which must be a file inside the checkout."""
    path = (checkout / relative).resolve()
    if not path.is_relative_to(checkout.resolve()):
        raise AirflowFailException(f"artifact path {relative!r} leaves the checkout")
    if not path.is_file():
        raise AirflowFailException(f"the build did not produce the artifact {relative!r}")
    return path
