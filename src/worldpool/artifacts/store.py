"""Content-addressed artifacts: values travel by reference (:class:`ArtifactRef`), not inline.

An artifact is stored under ``sha256:<hex>`` of its bytes, so storing the same bytes twice
costs nothing and a reader can always verify what it got. Small values (up to
``settings.inline_artifact_max_bytes``) live in the backend itself (``put_blob`` with
``settings.artifact_ttl_s``); larger ones go to a :class:`BlobStore` (a directory here, an
S3-compatible bucket elsewhere). Without a blob store, every value is kept in the backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

import pydantic

from worldpool.backends.base import Backend
from worldpool.config import Settings
from worldpool.errors import ArtifactError
from worldpool.models import ArtifactRef

_DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")


def digest_of(data: bytes) -> str:
    """The content address of ``data``: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex_of(digest: str) -> str:
    """The hex part of a digest; anything else is refused, so it is safe in a file name."""
    match = _DIGEST_RE.match(digest)
    if match is None:
        raise ArtifactError(f"{digest!r} is not an artifact digest; expected 'sha256:<64 hex>'")
    return match.group(1)


@runtime_checkable
class BlobStore(Protocol):
    """Where large artifacts live, keyed by digest. Writes must be atomic; no TTL."""

    async def put(self, digest: str, data: bytes) -> None: ...

    async def get(self, digest: str) -> bytes | None: ...

    async def exists(self, digest: str) -> bool: ...


class DirectoryBlobStore:
    """Blobs as files under ``root``: ``root/ab/cd/abcd...`` (the hex digest, fanned out).

    File names come only from validated hex digests, so no input can name a path outside
    ``root``. Writes go to a temporary file in the target directory and are renamed into
    place, so a reader never sees half a blob, and concurrent writers of the same digest
    both succeed with identical content. File I/O runs in a thread to keep the loop free.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, digest: str) -> Path:
        hex_digest = _hex_of(digest)
        return self.root / hex_digest[:2] / hex_digest[2:4] / hex_digest

    async def put(self, digest: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self.path_for(digest), data)

    async def get(self, digest: str) -> bytes | None:
        return await asyncio.to_thread(self._read, self.path_for(digest))

    async def exists(self, digest: str) -> bool:
        return await asyncio.to_thread(self.path_for(digest).is_file)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        if path.is_file():
            return  # content-addressed: the same name always holds the same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None


class ArtifactStore:
    """Put and get artifacts by content hash; every ``get`` verifies what it read."""

    def __init__(
        self,
        backend: Backend,
        settings: Settings | None = None,
        blob_store: BlobStore | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        if blob_store is None:  # the one the settings name (a directory, s3://...)
            from worldpool.artifacts.blobs import blob_store_for

            blob_store = blob_store_for(self.settings)
        self.blob_store = blob_store

    def _inline(self, size: int) -> bool:
        return self.blob_store is None or size <= self.settings.inline_artifact_max_bytes

    async def put(
        self,
        name: str,
        data: bytes,
        media_type: str = "application/octet-stream",
        producer: str | None = None,
    ) -> ArtifactRef:
        """Store ``data`` (deduplicated by hash) and return its reference."""
        digest = digest_of(data)
        try:
            ref = ArtifactRef(
                digest=digest, name=name, size=len(data), media_type=media_type, producer=producer
            )
        except pydantic.ValidationError as exc:
            message = "; ".join(str(err["msg"]) for err in exc.errors())
            raise ArtifactError(f"cannot store artifact {name!r}: {message}") from None
        if self.blob_store is not None and not self._inline(len(data)):
            await self.blob_store.put(digest, data)
        else:
            await self.backend.put_blob(digest, data, ttl_s=self.settings.artifact_ttl_s)
        return ref

    async def get(self, ref: ArtifactRef) -> bytes:
        """The artifact's bytes. ArtifactError if it is missing or fails its hash check."""
        data = await self._find(ref)
        if data is None:
            where = "the backend" + (" or the blob store" if self.blob_store else "")
            raise ArtifactError(
                f"artifact {ref.name!r} ({ref.digest}) is not in {where}: it expired "
                f"(inline artifacts live {self.settings.artifact_ttl_s:g}s) or was never "
                "stored; re-run the step that produces it"
            )
        actual = digest_of(data)
        if actual != ref.digest or len(data) != ref.size:
            raise ArtifactError(
                f"artifact {ref.name!r} is corrupt: expected {ref.digest} ({ref.size} bytes), "
                f"read {actual} ({len(data)} bytes); delete the stored copy and re-run the "
                "step that produces it"
            )
        return data

    async def exists(self, ref: ArtifactRef) -> bool:
        """Whether the artifact is stored (its content is not checked)."""
        if await self.backend.has_blob(ref.digest):
            return True
        return self.blob_store is not None and await self.blob_store.exists(ref.digest)

    async def _find(self, ref: ArtifactRef) -> bytes | None:
        # Look first where put() would have placed it; another process may use a
        # different inline limit, so fall back to the other place.
        backend_first = self._inline(ref.size)
        if backend_first:
            data = await self.backend.get_blob(ref.digest)
            if data is not None:
                return data
        if self.blob_store is not None:
            data = await self.blob_store.get(ref.digest)
            if data is not None:
                return data
        return None if backend_first else await self.backend.get_blob(ref.digest)
