"""The blob-store options ``serve`` and ``worker`` share: ``--artifact-store`` (a
directory, or ``s3://bucket/prefix`` with credentials from the environment) and
``--s3-endpoint-url`` (an S3-compatible server). Flags win over ``WORLDPOOL_ARTIFACT_STORE``
and ``WORLDPOOL_ARTIFACT_S3_ENDPOINT_URL``; the store is opened once here, so a bad one
stops the command at start with a usage error instead of failing the first big step."""

from __future__ import annotations

from typing import Annotated

import typer

from worldpool.cli.app import Exit, fail
from worldpool.config import Settings
from worldpool.errors import ArtifactError, ConfigError

ArtifactStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--artifact-store",
        help="where large artifacts and workspaces go, shared by serve and every worker: "
        "a directory or s3://bucket/prefix (AWS_* credentials from the environment)",
    ),
]
S3EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint-url", help="S3-compatible endpoint for s3:// stores (MinIO, Ceph, R2)"
    ),
]


def blob_settings(settings: Settings, store: str | None, endpoint_url: str | None) -> Settings:
    """``settings`` with the flags' blob store, checked by opening it."""
    from worldpool.artifacts.blobs import blob_store_for

    update = {
        k: v
        for k, v in (("artifact_store", store), ("artifact_s3_endpoint_url", endpoint_url))
        if v is not None
    }
    settings = settings.model_copy(update=update) if update else settings
    try:
        blob_store_for(settings)
    except (ConfigError, ArtifactError) as exc:
        raise fail(Exit.USAGE, str(exc)) from None
    return settings
