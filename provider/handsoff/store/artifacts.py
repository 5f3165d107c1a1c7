"""The artifact store: each commit's build output, stored once and fetched by every stage.

A commit's folder holds the artifact and then `manifest.json` (written last, with the SHA-256),
so a half-written artifact is never taken for a complete one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import ObjectStoragePath

from handsoff.store.objects import default_store_url

MANIFEST = "manifest.json"
_CHUNK = 1024 * 1024


def store_root(url: str | None, conn_id: str | None = None) -> ObjectStoragePath:
    """The ObjectStoragePath of a store URL (None → default); s3:// goes through `conn_id`."""
    url = url or default_store_url()
    if url.startswith("file://"):
        return ObjectStoragePath(url)
    return ObjectStoragePath(url, conn_id=conn_id)


@dataclass(frozen=True)
class StoredArtifact:
    """A complete artifact in the store."""

    uri: str
    name: str
    sha256: str
    size: int


class ArtifactStore:
    """Artifacts of one pipeline, keyed by commit."""

    def __init__(self, root: ObjectStoragePath, pipeline: str) -> None:
        self.base = root / pipeline / "artifacts"

    def _folder(self, commit: str) -> ObjectStoragePath:
        return self.base / commit

    def find(self, commit: str) -> StoredArtifact | None:
        """The complete artifact of `commit`, or None when there is none."""
        manifest = self._folder(commit) / MANIFEST
        if not manifest.exists():
            return None
        data: dict[str, Any] = json.loads(manifest.read_text())
        return StoredArtifact(
            uri=str(self._folder(commit) / data["name"]),
            name=data["name"],
            sha256=data["sha256"],
            size=data["size"],
        )

    def put(self, commit: str, local_file: Path) -> StoredArtifact:
        """Upload `local_file` as the artifact of `commit`, then write its manifest."""
        target = self._folder(commit) / local_file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        try:
            with local_file.open("rb") as src, target.open("wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
        except OSError:
            target.unlink(missing_ok=True)  # no half-written artifact is left behind (and no manifest)
            raise
        manifest = {
            "name": local_file.name,
            "sha256": digest.hexdigest(),
            "size": size,
            "commit": commit,
            "stored_at": datetime.now(UTC).isoformat(),
        }
        (self._folder(commit) / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return StoredArtifact(uri=str(target), name=local_file.name, sha256=manifest["sha256"], size=size)

    def fetch(self, commit: str, dest_dir: Path) -> Path:
        """Copy the stored artifact of `commit` into `dest_dir`, verifying its SHA-256."""
        stored = self.find(commit)
        if stored is None:
            raise FileNotFoundError(f"no complete artifact for commit {commit[:12]} in {self.base}")
        dest = dest_dir / stored.name
        digest = hashlib.sha256()
        with (self._folder(commit) / stored.name).open("rb") as src, dest.open("wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
        if digest.hexdigest() != stored.sha256:
            dest.unlink()
            raise ValueError(f"artifact of commit {commit[:12]} does not match its manifest checksum")
        return dest
