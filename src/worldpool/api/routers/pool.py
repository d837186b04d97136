"""The pool (workers with load, heartbeat age, region), artifacts, health and metrics."""

from __future__ import annotations

import re

from fastapi import APIRouter, Response

from worldpool.api.errors import ApiError
from worldpool.api.metrics import CONTENT_TYPE
from worldpool.api.routers.tasks import ERRORS
from worldpool.api.schemas import Health, WorkerView
from worldpool.api.state import State
from worldpool.artifacts.store import digest_of
from worldpool.models import WorkerStatus

router = APIRouter(responses=ERRORS)

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# Only raster images are shown inline (an SVG could carry script); the rest downloads.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@router.get("/api/v1/workers", response_model=list[WorkerView], tags=["pool"])
async def list_workers(api: State) -> list[WorkerView]:
    """Every registered worker, grouped by region then id."""
    now = await api.orchestrator.backend.now()
    workers = await api.orchestrator.pool()
    views = [WorkerView.of(w, now) for w in workers]
    return sorted(views, key=lambda v: (v.macro_region, v.region, v.id))


@router.get(
    "/api/v1/artifacts/{digest}",
    tags=["artifacts"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}, "image/png": {}}}},
)
async def get_artifact(digest: str, api: State) -> Response:
    """An artifact's bytes, verified against its digest. Images are served inline (for
    screenshot previews); everything else as a download."""
    if not _DIGEST_RE.match(digest):
        raise ApiError(422, f"{digest!r} is not an artifact digest: expected 'sha256:<64 hex>'")
    store = api.orchestrator.artifacts
    data = await store.backend.get_blob(digest)
    if data is None and store.blob_store is not None:
        data = await store.blob_store.get(digest)
    if data is None:
        raise ApiError(404, f"no artifact {digest}: it expired or was never stored")
    if digest_of(data) != digest:
        raise ApiError(
            409, f"artifact {digest} is corrupt (hash mismatch); re-run its step", "corrupt"
        )
    media = next((m for magic, m in _MAGIC if data.startswith(magic)), None)
    if media is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        media = "image/webp"
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=31536000, immutable",  # content-addressed
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if media is None:
        media = "application/octet-stream"
        headers["Content-Disposition"] = f'attachment; filename="{digest[7:19]}.bin"'
    return Response(data, media_type=media, headers=headers)


@router.get("/healthz", response_model=Health, tags=["system"], responses={503: {"model": Health}})
async def healthz(api: State) -> Response:
    """Liveness and a backend round trip (no auth). 503 once the backend lost its state
    under this server (Redis came back empty or older): it must not pass unnoticed."""
    workers = await api.orchestrator.pool()
    online = sum(1 for w in workers if w.state.status is WorkerStatus.ONLINE)
    lost = api.orchestrator.sweeper.epoch.lost
    health = Health(
        status="ok" if lost is None else f"state lost: {lost}",
        backend=api.orchestrator.backend.name,
        workers_online=online,
    )
    return Response(
        health.model_dump_json(), status_code=200 if lost is None else 503,
        media_type="application/json",
    )  # fmt: skip


@router.get(
    "/metrics",
    tags=["system"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(api: State) -> Response:
    """Prometheus text exposition (read role)."""
    return Response(api.metrics.render(), media_type=CONTENT_TYPE)
