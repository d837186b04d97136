"""Fixtures of the bridge tests: one redis-server for the session (worldpool namespaces and
Celery queues are per test), the test Celery app pointed at it, and a small Celery fleet."""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.bridges.fleet import celery_env, start_celery_worker, wait_ready
from tests.e2e.procs import Proc, client, cluster
from tests.redis_server import RedisServer, redis_server, redis_server_session
from worldpool.backends import backend_from_url
from worldpool.backends.base import Backend
from worldpool.bridges.celery import CeleryBridge, FleetMonitor
from worldpool.config import Settings
from worldpool.embedded import make_worker
from worldpool.orchestrator.core import Orchestrator
from worldpool.worker.runtime import WorkerRuntime

__all__ = ["client", "cluster", "redis_server", "redis_server_session"]

pytest.importorskip("celery")

FLEET_QUEUE = "fleet"


@pytest.fixture(scope="session")
def celery_tasks(redis_server_session: RedisServer) -> ModuleType:
    """The test Celery app's module, configured for the session's redis-server."""
    os.environ["WP_CELERY_URL"] = redis_server_session.url
    module = importlib.import_module("tests.bridges.celery_tasks")
    module.app.conf.update(
        broker_url=redis_server_session.url, result_backend=redis_server_session.url
    )
    return module


@pytest.fixture(scope="session")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("celery") / "ledger.txt"


@pytest.fixture(scope="module")  # stopped after the module that uses it
def fleet(
    celery_tasks: ModuleType, redis_server_session: RedisServer, ledger: Path
) -> Iterator[Proc]:
    """One prefork Celery worker (2 processes: terminate works) on queue ``fleet``."""
    proc = start_celery_worker(
        "fleet",
        [FLEET_QUEUE],
        ledger.parent,
        celery_env(redis_server_session.url, ledger),
        pool="prefork",
        concurrency=2,
    )
    try:
        wait_ready([proc])
        yield proc
    finally:
        proc.kill()


@dataclass
class BridgedPool:
    """An orchestrator and one bridge worker in this process, on Redis."""

    orchestrator: Orchestrator
    backend: Backend
    bridge: CeleryBridge
    runtime: WorkerRuntime


async def bridged_pool(
    app: Any, url: str, queue: str, *, monitor: FleetMonitor | None = None
) -> AsyncIterator[BridgedPool]:
    settings = Settings(namespace=f"bridge-{uuid.uuid4().hex[:8]}", heartbeat_s=0.25)
    backend = backend_from_url(url, settings)
    bridge = CeleryBridge(app, queue, monitor=monitor)
    handlers = bridge.handlers()
    profile = make_worker("bridge-1", handlers=handlers.names(), labels={"celery_queue": queue})
    runtime = WorkerRuntime(backend, profile, handlers, settings)
    orchestrator = Orchestrator(backend, settings)
    await runtime.start()
    await orchestrator.start()
    try:
        yield BridgedPool(orchestrator, backend, bridge, runtime)
    finally:
        await orchestrator.stop()
        await runtime.stop(drain=False)
        await bridge.aclose()
        await backend.aclose()


@pytest.fixture
async def pool(
    celery_tasks: ModuleType, redis_server_session: RedisServer, fleet: Proc
) -> AsyncIterator[BridgedPool]:
    monitor = FleetMonitor(celery_tasks.app, FLEET_QUEUE, interval_s=0.5, inspect_timeout_s=0.5)
    async for made in bridged_pool(
        celery_tasks.app, redis_server_session.url, FLEET_QUEUE, monitor=monitor
    ):
        yield made
