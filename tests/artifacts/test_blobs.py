"""The blob store the settings name: a directory, file://, or s3://bucket/prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from worldpool.artifacts import ArtifactStore, DirectoryBlobStore, blob_store_for
from worldpool.artifacts.s3 import S3BlobStore
from worldpool.backends.memory import MemoryBackend
from worldpool.cli.app import Exit, app
from worldpool.config import Settings
from worldpool.errors import ConfigError


def test_directories_and_s3_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert blob_store_for(Settings()) is None
    plain = blob_store_for(Settings(artifact_store=str(tmp_path)))
    assert isinstance(plain, DirectoryBlobStore)
    assert isinstance(
        blob_store_for(Settings(artifact_store=f"file://{tmp_path}")), DirectoryBlobStore
    )
    assert isinstance(blob_store_for(Settings(artifact_dir=tmp_path)), DirectoryBlobStore)
    pytest.importorskip("boto3")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = blob_store_for(
        Settings(artifact_store="s3://bucket/a/b", artifact_s3_endpoint_url="http://127.0.0.1:1")
    )
    assert isinstance(s3, S3BlobStore) and (s3.bucket, s3.prefix) == ("bucket", "a/b/")
    assert s3.client.meta.endpoint_url == "http://127.0.0.1:1"
    with pytest.raises(ConfigError, match="names no bucket"):
        blob_store_for(Settings(artifact_store="s3:///x"))
    with pytest.raises(ConfigError, match="'ftp' is not supported"):
        blob_store_for(Settings(artifact_store="ftp://host/x"))


async def test_the_artifact_store_uses_the_settings_store(tmp_path: Path) -> None:
    settings = Settings(artifact_store=str(tmp_path), inline_artifact_max_bytes=0)
    async with MemoryBackend(settings) as backend:
        store = ArtifactStore(backend, settings)
        ref = await store.put("big.bin", b"x" * 100)
        assert not await backend.has_blob(ref.digest)
        assert await store.get(ref) == b"x" * 100
    assert any(p.is_file() for p in tmp_path.rglob("*"))  # noqa: ASYNC240


def test_a_bad_store_flag_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        app, ["serve", "--redis", "redis://127.0.0.1:1", "--artifact-store", "ftp://x/y"]
    )
    assert result.exit_code == Exit.USAGE and "not supported" in result.output
