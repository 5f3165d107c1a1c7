"""Extra links to what a run deploys: the commit (source task) and the stored artifact (build task).

Like the AWS links, the task stores the link's values in XCom at run time (`persist`); the UI formats the
URL from them. A link with nothing stored (no `source.commit_url`, a task that did not run) is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey
    from airflow.sdk import BaseOperator, Context

S3_CONSOLE_OBJECT = "https://console.aws.amazon.com/s3/object/{bucket}"


class _StoredLink(BaseOperatorLink):
    """A link whose values the task stored in XCom under `key`."""

    name: ClassVar[str]
    key: ClassVar[str]

    def format_link(self, **values: Any) -> str:
        raise NotImplementedError

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            values = XCom.get_value(key=self.key, ti_key=ti_key)
            return self.format_link(**values) if values else ""
        except Exception:  # a link never breaks the UI
            return ""

    @classmethod
    def persist(cls, context: Context, **values: Any) -> None:
        """Store the link's values for this task instance (nothing without one, e.g. a bare execute())."""
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=cls.key, value=values)


class CommitLink(_StoredLink):
    """The commit the run deploys in the repository web UI (`source.commit_url`, `${commit}` filled)."""

    name = "Commit"
    key = "handsoff_commit"

    def format_link(self, **values: Any) -> str:
        template, commit = values.get("template") or "", values.get("commit") or ""
        return template.replace("${commit}", quote(commit, safe="")) if template and commit else ""


class ArtifactLink(_StoredLink):
    """The stored artifact: the S3 console page of the object (s3://), the file URI (file://)."""

    name = "Artifact"
    key = "handsoff_artifact"

    def format_link(self, **values: Any) -> str:
        uri = values.get("uri") or ""
        parts = urlsplit(uri)
        if parts.scheme == "file":
            return uri
        if parts.scheme in ("s3", "s3a") and parts.hostname:
            # ObjectStoragePath writes the connection as user info (s3://aws_default@bucket/key): dropped
            bucket, key = parts.netloc.rpartition("@")[2], parts.path.lstrip("/")
            query = {"region": values["region"]} if values.get("region") else {}
            query["prefix"] = key
            return S3_CONSOLE_OBJECT.format(bucket=quote(bucket, safe="")) + "?" + urlencode(query)
        return ""
