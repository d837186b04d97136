"""Fixtures: a real orchestrator with in-process workers, and an API client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.api.support import ADMIN, ThreadedServer, build_app, make_pool
from worldpool.testing import EmbeddedPool


@pytest.fixture
async def pool() -> AsyncIterator[EmbeddedPool]:
    async with make_pool() as p:
        yield p


@pytest.fixture
async def client(pool: EmbeddedPool) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(pool)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://api.test",
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as c:
            yield c


@pytest.fixture(scope="session")
def schema_server() -> Iterator[ThreadedServer]:
    """One API server in a thread for the stateless schemathesis runs (each checks every
    response alone, so what another submitted does not matter)."""
    with ThreadedServer() as server:
        yield server
