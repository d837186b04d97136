"""The pool metrics a team alerts on (issue 18): heartbeat age per worker, queue depth per
capability, failovers and dead letters, scraped from ``/metrics`` of an app on a real
redis-server and parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.redis_server import RedisServer, start_redis
from worldpool.api import create_app
from worldpool.backends.redis import RedisBackend
from worldpool.config import Settings
from worldpool.models import Event, EventKind, TaskSpec
from worldpool.orchestrator.core import Orchestrator
from worldpool.testing import make_worker

SETTINGS = Settings(namespace="pool-metrics", heartbeat_s=0.2)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from start_redis()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_pool_metrics_are_scraped_and_named_by_convention(redis: RedisServer) -> None:
    async with RedisBackend.from_url(redis.url, SETTINGS) as backend:
        # Given a worker that heartbeated once, three queued tasks, a failover, a dead letter
        worker = make_worker("gpu-tokyo-1", region="ap-northeast-1", handlers={"x": print})
        await backend.register(worker)
        orchestrator = Orchestrator(backend, SETTINGS)  # not started: the tasks stay queued
        for caps in (["coding"], ["coding", "testing"], []):
            await orchestrator.submit(TaskSpec(handler="x", capabilities=frozenset(caps)))
        await backend.append_event(Event(kind=EventKind.TASK_FAILOVER, task_id="t-lost"))
        await backend.dead_letter("gpu-tokyo-1", "bad_signature", "signature mismatch", b"{}")
        app = create_app(orchestrator, SETTINGS, metrics_from_start=True)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            # When /metrics is scraped after the consumer's first poll and a pause
            got: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for _ in range(100):
                response = await c.get("/metrics")
                got = samples(response.text)
                age = got.get(
                    (
                        "worldpool_worker_heartbeat_age_seconds",
                        (("region", "ap-northeast-1"), ("worker", "gpu-tokyo-1")),
                    ),
                    0.0,
                )
                if (
                    age > 0.3
                    and (
                        "worldpool_failovers_total",
                        (("handler", "unknown"), ("worker", "unknown")),
                    )
                    in got
                ):
                    break
                await asyncio.sleep(0.1)
    # Then every one is there, with Prometheus names and labels
    assert response.status_code == 200
    assert got[("worldpool_queue_depth", (("capability", "coding"),))] == 2
    assert got[("worldpool_queue_depth", (("capability", "testing"),))] == 1
    assert got[("worldpool_queue_depth", (("capability", "none"),))] == 1
    assert got[("worldpool_queue_length", ())] == 3
    assert age > 0.3  # it grows while the worker is silent
    assert got[("worldpool_dead_letters", (("code", "bad_signature"),))] == 1
    assert got[("worldpool_failovers_total", (("handler", "unknown"), ("worker", "unknown")))] == 1
