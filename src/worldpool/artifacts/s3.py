"""Large artifacts in any S3-compatible store (AWS S3, MinIO, Ceph RGW, R2, ...).

``pip install 'worldpool[s3]'``. Objects are named ``<prefix>sha256/<hex digest>``; they are
immutable (content-addressed), so a put of an existing digest simply rewrites the same
bytes, and a reader never sees half an object (S3 writes are atomic per object). Readers
verify every object by hash (:class:`worldpool.artifacts.store.ArtifactStore`), so a corrupt or
tampered object is refused, never used.

Credentials come from boto3's usual chain (environment, ``~/.aws``, instance role).
Expire old artifacts with a bucket lifecycle rule; the store itself sets no TTL.

>>> store = S3BlobStore("wp-artifacts", endpoint_url="https://minio.lan:9000")  # doctest: +SKIP
>>> ArtifactStore(backend, settings, blob_store=store)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from typing import Any

from worldpool.artifacts.store import _hex_of
from worldpool.errors import ArtifactError

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ArtifactError("the S3 blob store needs boto3: pip install 'worldpool[s3]'") from None
    return boto3


class S3BlobStore:
    """The :class:`~worldpool.artifacts.store.BlobStore` protocol on an S3 bucket.

    ``client`` is a ready boto3 S3 client (tests, custom credentials); otherwise one is made
    for ``endpoint_url`` (None: AWS). boto3 is blocking, so calls run in a thread.
    """

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        prefix: str = "",
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ArtifactError("S3BlobStore needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix
        if client is None:
            boto3 = _boto3()
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        self.client = client

    def key_for(self, digest: str) -> str:
        """The object key; only validated hex digests reach it."""
        return f"{self.prefix}sha256/{_hex_of(digest)}"

    async def put(self, digest: str, data: bytes) -> None:
        key = self.key_for(digest)
        await self._call("put", digest, self.client.put_object, Bucket=self.bucket, Key=key,
                         Body=data)  # fmt: skip

    async def get(self, digest: str) -> bytes | None:
        key = self.key_for(digest)

        def read() -> bytes:
            reply = self.client.get_object(Bucket=self.bucket, Key=key)
            body: bytes = reply["Body"].read()
            return body

        found: bytes | None = await self._call("get", digest, read)
        return found

    async def exists(self, digest: str) -> bool:
        key = self.key_for(digest)
        found = await self._call("head", digest, self.client.head_object, Bucket=self.bucket,
                                 Key=key)  # fmt: skip
        return found is not None

    async def _call(self, op: str, digest: str, fn: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in a thread; a missing object is None, any other failure ArtifactError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                return None
            raise ArtifactError(
                f"S3 {op} of {digest} in bucket {self.bucket!r} failed ({code}): {exc}; check "
                "the bucket exists and the credentials may read and write it"
            ) from exc
        except BotoCoreError as exc:
            raise ArtifactError(
                f"S3 {op} of {digest} in bucket {self.bucket!r} failed: {exc}; check the "
                "endpoint URL and that the store is reachable"
            ) from exc
