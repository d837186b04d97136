"""Fixtures: a private redis-server, the processes of one test, and the deployment most
client tests run against (``deployment.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.client.deployment import deployed, start_deployment
from tests.e2e.procs import Cluster, cluster, wait_workers
from tests.redis_server import redis_server
from worldpool import Client
from worldpool.backends import backend_from_url
from worldpool.config import Settings

__all__ = ["cluster", "redis_server"]


@pytest.fixture
async def deployment(cluster: Cluster) -> AsyncIterator[Client]:
    async with deployed(cluster) as client:
        yield client


@pytest.fixture
def sync_deployment(cluster: Cluster) -> Cluster:
    """The same deployment for tests without an event loop (the CLI, the sync client)."""
    worker = start_deployment(cluster)

    async def ready() -> None:
        settings = Settings(namespace=cluster.namespace)
        async with backend_from_url(cluster.redis_url, settings) as backend:
            await wait_workers(backend, [worker])

    asyncio.run(ready())
    return cluster
