"""Small JSON documents in the artifact store, changed only by conditional writes: no lost update.

The ledger, the in-flight marks, the pipeline lease and the verdicts are read-modify-write documents that
several tasks may change at the same time (parallel deploys, an automatic and an on-demand rollback). Every
change goes through `update`: read the document and its version, compute the new text, write it only if
the version is still the one read, else read again. On local disk the version check and the write happen
under an exclusive lock file (`fcntl.flock`) and the write is an atomic rename; on S3 they are one request,
a conditional PUT (`If-Match` with the ETag read, `If-None-Match: *` for a new document).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from handsoff.model.pipeline import DEFAULT_AWS_CONN_ID

T = TypeVar("T")
#: `write(expect=ANY)`: write whatever is there
ANY: Any = object()
#: what a change function returns to leave a document as it is
UNCHANGED: Any = object()
_ATTEMPTS = 50


class PreconditionFailed(Exception):
    """The document changed (or appeared, or went away) since it was read: read it again."""


class Versioned(NamedTuple):
    """A document's text and the version it was read at (both None: there is no such document)."""

    text: str | None
    version: str | None


class ObjectStore(ABC):
    """JSON documents by key (`a/b/c.json`) under the store's root."""

    @abstractmethod
    def read(self, key: str) -> Versioned:
        """The document at `key` and its version."""

    @abstractmethod
    def write(self, key: str, text: str, *, expect: str | None = ANY) -> None:
        """Write `key` if its version is `expect` (None: only if absent; ANY: unconditionally)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key` (nothing when absent)."""

    @abstractmethod
    def names(self, prefix: str) -> list[str]:
        """The names of the documents directly under `prefix/`, sorted."""

    @abstractmethod
    def location(self, key: str = "") -> str:
        """Where `key` is, as a URL for messages."""

    def update(self, key: str, change: Callable[[str | None], tuple[Any, T]]) -> T:
        """Change `key` atomically: `change(text)` returns (new text, None to delete, or UNCHANGED; a
        result). Retried on a concurrent change; returns the result of the change that was written."""
        for attempt in range(_ATTEMPTS):
            current = self.read(key)
            new, result = change(current.text)
            if new is UNCHANGED:
                return result
            try:
                if new is None:
                    if current.version is not None:
                        self.delete(key)  # only the document's owner deletes (marks, lease)
                else:
                    self.write(key, new, expect=current.version)
                return result
            except PreconditionFailed:
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
        raise RuntimeError(f"{self.location(key)} changed {_ATTEMPTS} times while being updated")


class LocalObjectStore(ObjectStore):
    """Documents as files under `root`; a lock file per document makes check-and-write one step."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self, key: str) -> Versioned:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return Versioned(None, None)
        return Versioned(data.decode("utf-8", errors="replace"), hashlib.sha256(data).hexdigest())

    def write(self, key: str, text: str, *, expect: str | None = ANY) -> None:
        with self._locked(key) as path:
            if expect is not ANY and self.read(key).version != expect:
                raise PreconditionFailed(self.location(key))
            tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            tmp.replace(path)  # atomic: a reader sees the old document or the new one, never half

    def delete(self, key: str) -> None:
        with self._locked(key) as path:
            path.unlink(missing_ok=True)

    def names(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def location(self, key: str = "") -> str:
        return (self.root / key).as_uri() if key else self.root.as_uri()


class S3ObjectStore(ObjectStore):
    """Documents as S3 objects under `s3://bucket/prefix`, changed with conditional PUTs."""

    def __init__(self, bucket: str, prefix: str, aws_conn_id: str | None) -> None:
        self.bucket, self.prefix, self.aws_conn_id = bucket, prefix.strip("/"), aws_conn_id
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The boto3 S3 client of the pipeline's connection (made on first use)."""
        if self._client is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            self._client = S3Hook(aws_conn_id=self.aws_conn_id).get_conn()
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str) -> Versioned:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return Versioned(None, None)
        return Versioned(answer["Body"].read().decode("utf-8", errors="replace"), answer["ETag"])

    def write(self, key: str, text: str, *, expect: str | None = ANY) -> None:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": text.encode()}
        if expect is None:
            request["IfNoneMatch"] = "*"
        elif expect is not ANY:
            request["IfMatch"] = expect
        try:
            self.client.put_object(**request)
        except self.client.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # 412: the version changed; 409 ConditionalRequestConflict: another conditional write raced
            if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PreconditionFailed(self.location(key)) from None
            if code == "NoSuchKey" and expect not in (None, ANY):
                raise PreconditionFailed(self.location(key)) from None  # deleted since it was read
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def names(self, prefix: str) -> list[str]:
        folder = f"{self._key(prefix).rstrip('/')}/"
        paginator = self.client.get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=folder, Delimiter="/"):
            found += [item["Key"][len(folder) :] for item in page.get("Contents", [])]
        return sorted(found)

    def location(self, key: str = "") -> str:
        path = self._key(key) if key else self.prefix
        return f"s3://{self.bucket}/{path}"


def default_store_url() -> str:
    """The store used when a spec sets none: a folder under AIRFLOW_HOME."""
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return (Path(home).resolve() / "handsoff" / "artifacts").as_uri()


def object_store(url: str | None, aws_conn_id: str | None = DEFAULT_AWS_CONN_ID) -> ObjectStore:
    """The document store of an artifact store URL (`file://…`, `s3://bucket/prefix`; None: the default)."""
    parts = urlsplit(url or default_store_url())
    if parts.scheme == "file":
        return LocalObjectStore(Path(parts.path))
    if parts.scheme in ("s3", "s3a"):
        bucket = parts.netloc.rpartition("@")[2]  # ObjectStoragePath may write the connection as user info
        return S3ObjectStore(bucket, parts.path, aws_conn_id)
    raise ValueError(f"artifact store {url!r}: only file:// and s3:// stores are supported")
