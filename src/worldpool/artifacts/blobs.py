"""The blob store a deployment's settings name: :func:`blob_store_for`.

``Settings.artifact_store`` (``WORLDPOOL_ARTIFACT_STORE``, ``--artifact-store``) is a
directory (``/srv/worldpool/blobs``, ``file:///srv/...``) or ``s3://bucket/prefix`` on AWS
or, with ``artifact_s3_endpoint_url``, any S3-compatible server; S3 credentials come from
the environment as boto3 finds them (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, ``~/.aws``, an instance role). The older ``artifact_dir`` setting
still names a directory. Every process of a deployment (``serve`` and each ``worker``)
must name the same store, so a workspace one step stores is there for the next.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from worldpool.artifacts.store import BlobStore, DirectoryBlobStore
from worldpool.config import Settings
from worldpool.errors import ConfigError


def blob_store_for(settings: Settings) -> BlobStore | None:
    """The blob store ``settings`` name, or None (artifacts stay in the backend)."""
    location = settings.artifact_store
    if location is None:
        return DirectoryBlobStore(settings.artifact_dir) if settings.artifact_dir else None
    parts = urlsplit(location)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(
                f"artifact store {location!r} names no bucket: use s3://bucket/prefix"
            )
        from worldpool.artifacts.s3 import S3BlobStore

        prefix = parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return S3BlobStore(
            parts.netloc, endpoint_url=settings.artifact_s3_endpoint_url, prefix=prefix
        )
    if parts.scheme == "file":
        return DirectoryBlobStore(Path(parts.path))
    if parts.scheme:
        raise ConfigError(
            f"artifact store {location!r}: use a directory or s3://bucket/prefix "
            f"(the scheme {parts.scheme!r} is not supported)"
        )
    return DirectoryBlobStore(Path(location).expanduser())
