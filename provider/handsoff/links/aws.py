"""Extra links in the Airflow UI: the CloudWatch alarms a bake watched, the AWS resource a task deployed.

Built on the Amazon provider's BaseAwsLink: the task stores the link's values in XCom (`persist`), the UI
formats the URL from them.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class CloudWatchAlarmsLink(BaseAwsLink):
    """The CloudWatch console, filtered to the alarms a bake or blocker watched."""

    name = "CloudWatch alarms"
    key = "handsoff_alarms"
    format_str = BASE_AWS_CONSOLE_LINK + "/cloudwatch/home?region={region_name}#alarmsV2:?search={search}"

    @staticmethod
    def search_for(names: list[str]) -> str:
        """What to type in the console's search box to list these alarms (their common prefix)."""
        return os.path.commonprefix(names) if len(names) > 1 else (names[0] if names else "")


class DeployedResourceLink(BaseAwsLink):
    """The Lambda alias, ECS service or CloudFormation stack a deploy task changed."""

    name = "Deployed resource"
    key = "handsoff_deployed"
    formats: ClassVar[dict[str, str]] = {
        "lambda": "/lambda/home?region={region_name}#/functions/{function}/aliases/{alias}",
        "ecs": "/ecs/v2/clusters/{cluster}/services/{service}/health?region={region_name}",
        "cloudformation": "/cloudformation/home?region={region_name}#/stacks/stackinfo?stackId={stack}",
    }
    format_str = ""

    def format_link(self, **kwargs: Any) -> str:
        """The console URL for the deployer type in `kwargs["kind"]` ("" for types without one)."""
        path = self.formats.get(kwargs.get("kind", ""))
        if not path:
            return ""
        try:
            return (BASE_AWS_CONSOLE_LINK + path).format(**kwargs)
        except KeyError:
            return ""
