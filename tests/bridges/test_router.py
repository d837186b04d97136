"""A plain Celery app routes through worldpool: ``task_routes = (WorldpoolRouter(...),)``
picks the queue of the best Celery fleet (here by the caller's location), a real
``celery worker`` runs the call from that queue, and the decision is recorded."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from celery import Celery

from tests.bridges.fleet import celery_env, start_celery_worker, wait_ready
from tests.redis_server import RedisServer
from worldpool.backends import backend_from_url
from worldpool.backends.base import Backend
from worldpool.bridges.celery import CeleryBridge, WorldpoolRouter
from worldpool.config import Settings
from worldpool.embedded import make_worker
from worldpool.models import EventKind
from worldpool.worker.runtime import WorkerRuntime

FLEETS = {"bridge-eu": ("eu-west-2", "eu-fleet"), "bridge-ap": ("ap-northeast-1", "ap-fleet")}


@pytest.fixture
async def fleets(
    celery_tasks: ModuleType, redis_server_session: RedisServer, tmp_path: Path
) -> AsyncIterator[tuple[Settings, Backend]]:
    """Two Celery fleets known to worldpool (their bridges registered) and one real Celery
    worker consuming both queues (so a test can see which queue a call went to)."""
    settings = Settings(namespace=f"router-{uuid.uuid4().hex[:8]}", heartbeat_s=0.25)
    backend = backend_from_url(redis_server_session.url, settings)
    proc = start_celery_worker(
        "router-fleet",
        [queue for _, queue in FLEETS.values()],
        tmp_path,
        celery_env(redis_server_session.url),
        pool="threads",
    )
    runtimes = []
    try:
        for worker_id, (region, queue) in FLEETS.items():
            handlers = CeleryBridge(celery_tasks.app, queue).handlers()
            profile = make_worker(
                worker_id, region=region, handlers=handlers.names(), labels={"celery_queue": queue}
            )
            runtimes.append(WorkerRuntime(backend, profile, handlers, settings))
            await runtimes[-1].start()
        await asyncio.to_thread(wait_ready, [proc])  # the bridges keep heartbeating
        yield settings, backend
    finally:
        for runtime in runtimes:
            await runtime.stop(drain=False)
        await backend.aclose()
        proc.kill()


async def test_a_plain_celery_app_routes_through_worldpools_router(
    fleets: tuple[Settings, Backend], redis_server_session: RedisServer
) -> None:
    settings, backend = fleets
    router = WorldpoolRouter(redis_server_session.url, settings=settings, refresh_s=0.5)
    plain = Celery("plain", broker=redis_server_session.url, backend=redis_server_session.url)
    plain.conf.update(task_routes=(router,), task_serializer="json", accept_content=["json"])

    where = plain.signature("wp_tests.where")  # the caller has no code of the fleet's tasks
    try:
        # Celery calls block: off the event loop, where the bridges heartbeat
        tokyo = await asyncio.to_thread(
            where.apply_async, headers={"worldpool": {"user_location": "tokyo"}}
        )
        london = await asyncio.to_thread(
            where.apply_async, headers={"worldpool": {"user_location": "london"}}
        )
        assert await asyncio.to_thread(tokyo.get, timeout=20) == "ap-fleet"
        assert await asyncio.to_thread(london.get, timeout=20) == "eu-fleet"

        decision = router.explain(tokyo.id)
        assert decision is not None and decision.winner == "bridge-ap"
        assert decision.runner_up == "bridge-eu" and decision.feasible_count == 2
        recorded = {}
        deadline = time.monotonic() + 10
        while tokyo.id not in recorded and time.monotonic() < deadline:
            events = await backend.read_events(None, 1000)
            recorded = {e.task_id: e for e in events if e.kind is EventKind.TASK_ROUTED}
        event = recorded[tokyo.id]
        assert event.worker_id == "bridge-ap" and event.data["queue"] == "ap-fleet"
        assert event.data["decision"]["winner"] == "bridge-ap"  # explainable like any other

        # the task's own `worldpool` attribute (@app.task(worldpool={...})) is a hint too
        hinted = SimpleNamespace(worldpool={"user_location": "tokyo", "id": "ignored"})
        assert router.decide("wp_tests.where", {}, task=hinted)[1] == "ap-fleet"

        # a task no fleet runs: no route from worldpool, Celery falls back to its default
        unknown, queue = router.decide("no.such.task")
        assert queue is None and unknown.winner is None and unknown.reasons
    finally:
        router.close()
