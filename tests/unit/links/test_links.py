"""Extra links: where a task's values point in the forge, the artifact store and the AWS console."""

from __future__ import annotations

from handsoff.links.aws import CloudWatchAlarmsLink, DeployedResourceLink
from handsoff.links.source import ArtifactLink, CommitLink
from handsoff.plugins import HandsoffPlugin
from handsoff.provider_info import get_provider_info
from support.context import TaskInstanceStandIn, task_context


def test_links_format_to_the_commit_and_the_stored_artifact():
    sha = "0123456789abcdef0123456789abcdef01234567"
    template = "https://git.example.com/orders/commit/${commit}"
    assert (
        CommitLink().format_link(template=template, commit=sha)
        == f"https://git.example.com/orders/commit/{sha}"
    )
    assert CommitLink().format_link(template="", commit=sha) == ""
    s3 = ArtifactLink().format_link(
        uri=f"s3://aws_default@bucket/orders/artifacts/{sha}/app.zip", region="eu-west-1"
    )
    assert s3 == (
        "https://console.aws.amazon.com/s3/object/bucket?region=eu-west-1"
        f"&prefix=orders%2Fartifacts%2F{sha}%2Fapp.zip"
    )
    assert ArtifactLink().format_link(uri="s3://bucket/a.zip", region=None) == (
        "https://console.aws.amazon.com/s3/object/bucket?prefix=a.zip"
    )
    assert ArtifactLink().format_link(uri="file:///var/lib/a.zip") == "file:///var/lib/a.zip"
    assert ArtifactLink().format_link(uri="") == ""


def test_links_are_registered_with_the_plugin_and_the_provider():
    names = {type(link).__name__ for link in HandsoffPlugin.operator_extra_links}
    assert {"CommitLink", "ArtifactLink"} <= names
    assert {"handsoff.links.source.CommitLink", "handsoff.links.source.ArtifactLink"} <= set(
        get_provider_info()["extra-links"]
    )


def test_deployed_resource_links_go_to_the_console_page_of_what_was_changed():
    link = DeployedResourceLink()
    region = {"region_name": "eu-west-1", "aws_domain": "aws.amazon.com", "aws_partition": "aws"}

    lam = link.format_link(kind="lambda", function="orders-iad", alias="live", **region)
    ecs = link.format_link(kind="ecs", cluster="web", service="api", **region)

    assert lam == (
        "https://console.aws.amazon.com/lambda/home?region=eu-west-1#/functions/orders-iad/aliases/live"
    )
    assert ecs == "https://console.aws.amazon.com/ecs/v2/clusters/web/services/api/health?region=eu-west-1"
    assert link.format_link(kind="command", **region) == ""  # no console page for a command target
    assert link.format_link(kind="lambda", **region) == ""  # values missing: no link rather than a broken one


def test_the_alarms_link_searches_for_what_the_alarms_share():
    assert CloudWatchAlarmsLink.search_for(["orders-iad-errors", "orders-iad-latency"]) == "orders-iad-"
    assert CloudWatchAlarmsLink.search_for(["orders-iad-errors"]) == "orders-iad-errors"
    assert CloudWatchAlarmsLink.search_for([]) == ""


def test_a_link_stores_its_values_for_the_task_instance():
    ti = TaskInstanceStandIn(task_id="source")

    CommitLink.persist(task_context(ti), template="https://git/${commit}", commit="abc")

    assert ti.pushed[CommitLink.key] == {"template": "https://git/${commit}", "commit": "abc"}
