"""ArtifactStore: content addressing, inline vs directory storage, verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from worldpool.artifacts.store import ArtifactStore, BlobStore, DirectoryBlobStore
from worldpool.backends import MemoryBackend
from worldpool.config import Settings
from worldpool.errors import ArtifactError
from worldpool.models import ArtifactRef

SMALL = b"small value"
LARGE = bytes(range(256)) * 8  # 2 KiB, over the 1 KiB inline limit below


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(inline_artifact_max_bytes=1024, artifact_dir=tmp_path / "blobs")


@pytest.fixture
def backend(settings: Settings) -> MemoryBackend:
    return MemoryBackend(settings)


@pytest.fixture
def store(backend: MemoryBackend, settings: Settings) -> ArtifactStore:
    return ArtifactStore(backend, settings)


async def test_small_values_are_inline_in_the_backend(
    store: ArtifactStore, backend: MemoryBackend, tmp_path: Path
) -> None:
    ref = await store.put("plan.md", SMALL, media_type="text/markdown", producer="w1")

    assert ref.digest == "sha256:" + hashlib.sha256(SMALL).hexdigest()
    assert (ref.name, ref.size, ref.media_type, ref.producer) == (
        "plan.md",
        len(SMALL),
        "text/markdown",
        "w1",
    )
    assert await backend.get_blob(ref.digest) == SMALL
    assert not (tmp_path / "blobs").exists()
    assert await store.get(ref) == SMALL
    assert await store.exists(ref)


async def test_large_values_go_to_the_directory(
    store: ArtifactStore, backend: MemoryBackend, tmp_path: Path
) -> None:
    ref = await store.put("trace.bin", LARGE)

    hex_digest = ref.digest.removeprefix("sha256:")
    path = tmp_path / "blobs" / hex_digest[:2] / hex_digest[2:4] / hex_digest
    assert path.read_bytes() == LARGE
    assert await backend.get_blob(ref.digest) is None
    assert [p.name for p in path.parent.iterdir()] == [hex_digest]  # no temp files left
    assert await store.get(ref) == LARGE
    assert await store.exists(ref)


async def test_without_a_blob_store_large_values_are_inline(backend: MemoryBackend) -> None:
    store = ArtifactStore(backend, Settings(inline_artifact_max_bytes=16))
    assert store.blob_store is None

    ref = await store.put("big", LARGE)

    assert await backend.get_blob(ref.digest) == LARGE
    assert await store.get(ref) == LARGE


async def test_same_bytes_are_stored_once(store: ArtifactStore, tmp_path: Path) -> None:
    a = await store.put("a.bin", LARGE)
    b = await store.put("b.bin", LARGE)

    assert a.digest == b.digest
    assert a.name != b.name
    assert len(files_under(tmp_path / "blobs")) == 1


async def test_corrupt_file_fails_the_hash_check(store: ArtifactStore, tmp_path: Path) -> None:
    ref = await store.put("trace.bin", LARGE)
    [path] = files_under(tmp_path / "blobs")
    path.write_bytes(LARGE[:-1] + b"\x00")

    with pytest.raises(ArtifactError, match=r"trace\.bin' is corrupt"):
        await store.get(ref)


async def test_corrupt_inline_value_fails_the_hash_check(
    store: ArtifactStore, backend: MemoryBackend
) -> None:
    ref = await store.put("plan.md", SMALL)
    await backend.put_blob(ref.digest, b"tampered")

    with pytest.raises(ArtifactError, match="corrupt"):
        await store.get(ref)


async def test_missing_artifact_says_what_to_do(store: ArtifactStore) -> None:
    ref = ArtifactRef(digest="sha256:" + "f" * 64, name="gone.txt", size=3)

    assert not await store.exists(ref)
    with pytest.raises(ArtifactError, match=r"'gone\.txt'.*re-run the step"):
        await store.get(ref)


async def test_reader_with_another_inline_limit_still_finds_it(
    backend: MemoryBackend, settings: Settings
) -> None:
    writer = ArtifactStore(backend, settings)
    small_ref = await writer.put("s", SMALL)
    large_ref = await writer.put("l", LARGE)
    reader = ArtifactStore(
        backend,
        settings.model_copy(update={"inline_artifact_max_bytes": 1}),
        DirectoryBlobStore(settings.artifact_dir or Path()),
    )

    assert await reader.get(small_ref) == SMALL
    reader_big_limit = ArtifactStore(
        backend, settings.model_copy(update={"inline_artifact_max_bytes": 10**6})
    )
    assert await reader_big_limit.get(large_ref) == LARGE


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "..", "c\\d", ""])
async def test_unsafe_names_are_refused(store: ArtifactStore, name: str) -> None:
    with pytest.raises(ArtifactError, match="cannot store artifact"):
        await store.put(name, SMALL)


@pytest.mark.parametrize("digest", ["sha256:../../x", "md5:abc", "sha256:" + "A" * 64, ""])
async def test_directory_store_refuses_anything_but_a_digest(tmp_path: Path, digest: str) -> None:
    blobs = DirectoryBlobStore(tmp_path)
    with pytest.raises(ArtifactError, match="not an artifact digest"):
        await blobs.put(digest, b"x")
    with pytest.raises(ArtifactError):
        await blobs.get(digest)
    assert files_under(tmp_path) == []


async def test_directory_store_round_trip(tmp_path: Path) -> None:
    blobs: BlobStore = DirectoryBlobStore(tmp_path)
    digest = "sha256:" + hashlib.sha256(b"data").hexdigest()

    assert await blobs.get(digest) is None
    assert not await blobs.exists(digest)
    await blobs.put(digest, b"data")
    await blobs.put(digest, b"data")
    assert await blobs.get(digest) == b"data"
    assert await blobs.exists(digest)
    assert isinstance(blobs, BlobStore)
