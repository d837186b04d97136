"""The deployment most client tests run against: ``worldpool serve`` and worker ``w1``
(us-east-1) with the test handlers, as real processes (fixtures: conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from tests.e2e.procs import Cluster, Proc, wait_workers
from worldpool import Client

TEST_HANDLERS = "tests.client.handlers:HANDLERS"


def start_deployment(
    cluster: Cluster, handlers: str = TEST_HANDLERS, env: Mapping[str, str] | None = None
) -> Proc:
    """``worldpool serve`` and worker ``w1`` (us-east-1, only ``handlers``); the worker's
    process (wait for it with :func:`wait_workers`)."""
    cluster.serve(env=env)
    return cluster.worker(
        "w1", "--region", "us-east-1", "--handlers", handlers, "--no-builtin", env=env
    )


@contextlib.asynccontextmanager
async def deployed(
    cluster: Cluster, handlers: str = TEST_HANDLERS, env: Mapping[str, str] | None = None
) -> AsyncIterator[Client]:
    """:func:`start_deployment`, then a client once the worker is online."""
    worker = start_deployment(cluster, handlers, env)
    async with await Client.connect(cluster.redis_url, namespace=cluster.namespace) as client:
        await wait_workers(client.backend, [worker])
        yield client
