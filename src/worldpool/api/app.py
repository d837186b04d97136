"""The API app factory: REST + SSE + the bundled dashboard, state on the app.

    app = create_app(orchestrator, settings, bind_host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=8600)

The caller owns the orchestrator's lifecycle (``async with orchestrator``); the app's
lifespan only runs the metrics consumer that follows the backend's event log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from worldpool.api import errors
from worldpool.api.auth import ApiTokens, AuthMiddleware, auth_enabled
from worldpool.api.bodylimit import BodyLimitMiddleware
from worldpool.api.metrics import Metrics
from worldpool.api.routers import dead_letters, pool, runs, tasks, vnc, workflows
from worldpool.api.sse import router as sse_router
from worldpool.api.state import ApiState
from worldpool.api.strictjson import StrictJsonMiddleware
from worldpool.config import Settings
from worldpool.event_log import tail_seq
from worldpool.orchestrator.core import Orchestrator

API_VERSION = "1"


def create_app(
    orchestrator: Orchestrator,
    settings: Settings | None = None,
    *,
    tokens: ApiTokens | None = None,
    bind_host: str = "127.0.0.1",
    sse_ping_s: float = 15.0,
    max_streams: int = 64,
    metrics_from_start: bool = False,
) -> FastAPI:
    """Build the app. Auth is on when tokens are configured (``tokens`` or
    ``WORLDPOOL_API_TOKEN_*`` in ``settings``) and required when ``bind_host`` is not
    loopback (ConfigError otherwise). ``metrics_from_start`` replays the whole retained
    event log into the counters instead of starting at its tail."""
    settings = settings or orchestrator.settings
    tokens = tokens if tokens is not None else ApiTokens.from_settings(settings)
    enabled = auth_enabled(tokens, bind_host)
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        after = None if metrics_from_start else await tail_seq(orchestrator.backend)
        consumer = asyncio.create_task(
            metrics.run(
                orchestrator.backend,
                after=after,
                pool=lambda: orchestrator.pool_snapshot.workers if orchestrator.running else None,
            )
        )
        try:
            yield
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    # declared for the OpenAPI schema only; AuthMiddleware enforces it before any parsing
    bearer: list[Any] = [Depends(HTTPBearer(auto_error=False))] if enabled else []
    app = FastAPI(
        title="worldpool",
        version=API_VERSION,
        description="Route AI-agent work to the right worker anywhere in the world.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads from a CDN; the schema is at /openapi.json
        redoc_url=None,
        dependencies=bearer,
    )
    app.state.api = ApiState(
        orchestrator=orchestrator,
        settings=settings,
        tokens=tokens,
        auth_enabled=enabled,
        metrics=metrics,
        sse_ping_s=sse_ping_s,
        max_streams=max_streams,
    )
    errors.install(app)
    routers = (
        tasks.router,
        runs.router,
        vnc.router,
        workflows.router,
        pool.router,
        dead_letters.router,
    )
    for router in (*routers, sse_router):
        app.include_router(router)
    app.add_middleware(StrictJsonMiddleware)  # inside the body limit: reads capped bodies
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    if enabled:
        app.add_middleware(AuthMiddleware, tokens=tokens)
    static = resources.files("worldpool.api") / "static"
    app.mount("/", StaticFiles(directory=str(static), html=True), name="dashboard")
    return app
