"""S3BlobStore against a real S3-compatible server (moto's server mode on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import free_port
from worldpool.artifacts.s3 import S3BlobStore
from worldpool.artifacts.store import ArtifactStore, BlobStore
from worldpool.backends import MemoryBackend
from worldpool.config import Settings
from worldpool.errors import ArtifactError
from worldpool.worker.handlers import digest_of

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "wp-artifacts"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def store(s3_client: Any) -> S3BlobStore:
    return S3BlobStore(BUCKET, prefix="prod/", client=s3_client)


async def test_put_get_exists_round_trip(store: S3BlobStore, s3_client: Any) -> None:
    data = b"\x00large artifact\xff" * 1000
    digest = digest_of(data)
    assert isinstance(store, BlobStore)
    assert await store.get(digest) is None
    assert await store.exists(digest) is False

    await store.put(digest, data)

    assert await store.get(digest) == data
    assert await store.exists(digest) is True
    key = f"prod/sha256/{digest.removeprefix('sha256:')}"
    assert s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


async def test_a_bad_digest_never_reaches_s3(store: S3BlobStore) -> None:
    with pytest.raises(ArtifactError, match="not an artifact digest"):
        await store.put("sha256:../../etc/passwd", b"x")


async def test_a_missing_bucket_is_an_artifact_error(s3_client: Any) -> None:
    store = S3BlobStore("no-such-bucket", client=s3_client)
    with pytest.raises(ArtifactError, match="no-such-bucket"):
        await store.put(digest_of(b"x"), b"x")


async def test_artifact_store_puts_large_values_in_s3_and_verifies_them(
    store: S3BlobStore, s3_client: Any
) -> None:
    # Given an artifact store whose inline limit is 16 bytes
    backend = MemoryBackend()
    artifacts = ArtifactStore(backend, Settings(inline_artifact_max_bytes=16), blob_store=store)
    big = b"x" * 1024

    # When a large value is stored, it goes to S3, not the backend
    ref = await artifacts.put("report.txt", big)
    assert await backend.get_blob(ref.digest) is None
    assert await artifacts.get(ref) == big

    # And a tampered object is refused on read
    key = store.key_for(ref.digest)
    s3_client.put_object(Bucket=BUCKET, Key=key, Body=b"y" * 1024)
    with pytest.raises(ArtifactError, match="corrupt"):
        await artifacts.get(ref)
