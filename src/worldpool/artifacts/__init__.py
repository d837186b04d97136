"""Artifacts: content-addressed values that travel between steps by reference.

:mod:`.store` holds the :class:`ArtifactStore` (small values in the backend, large ones in a
blob store) and the directory blob store; :mod:`.s3` an S3-compatible blob store
(``pip install 'worldpool[s3]'``, imported on use); :mod:`.blobs` the blob store the
settings name (``--artifact-store DIR | s3://bucket/prefix``).
"""

from worldpool.artifacts.blobs import blob_store_for
from worldpool.artifacts.store import ArtifactStore, BlobStore, DirectoryBlobStore, digest_of

__all__ = ["ArtifactStore", "BlobStore", "DirectoryBlobStore", "blob_store_for", "digest_of"]
