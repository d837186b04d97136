"""The bridge's pure parts: attempt ids, the JSON-only check, arguments, failure mapping,
and the liveness rules of FleetMonitor (fed answers, no Celery workers needed)."""

from __future__ import annotations

import asyncio

import pytest
from celery import Celery

from worldpool.bridges.celery import (
    FleetMonitor,
    celery_task_id,
    load_celery_app,
    parse_celery_task_id,
)
from worldpool.bridges.celery.app import check_json_only
from worldpool.bridges.celery.bridge import _arguments, _failure
from worldpool.errors import ConfigError, TaskTimeoutError

plain = Celery("plain", broker="memory://")  # loaded by test_load_celery_app


def test_each_attempt_has_its_own_celery_id() -> None:
    ids = {celery_task_id("wf.step", n) for n in (1, 2, 3)}
    assert len(ids) == 3
    assert parse_celery_task_id(celery_task_id("wf.step", 2)) == ("wf.step", 2)
    assert parse_celery_task_id("0b1c-uuid-made-by-celery") is None


def test_pickle_is_refused() -> None:
    app = Celery("p", broker="memory://")
    app.conf.update(accept_content=["json", "pickle"])
    with pytest.raises(ConfigError, match="JSON only"):
        check_json_only(app)
    app.conf.update(accept_content=["json"], result_serializer="pickle")
    with pytest.raises(ConfigError, match="result_serializer"):
        check_json_only(app)


def test_load_celery_app() -> None:
    assert load_celery_app("tests.bridges.test_units:plain") is plain
    with pytest.raises(ConfigError, match="module:app"):
        load_celery_app("no-colon")
    with pytest.raises(ConfigError, match="not a Celery app"):
        load_celery_app("tests.bridges.test_units:test_load_celery_app")
    with pytest.raises(ConfigError, match="nope"):
        load_celery_app("tests.bridges.test_units:nope")


def test_payload_becomes_celery_arguments() -> None:
    assert _arguments({"x": 1, "y": 2}) == ([], {"x": 1, "y": 2})
    assert _arguments({"args": [1, 2]}) == ([1, 2], {})
    assert _arguments({"args": [1], "kwargs": {"y": 2}}) == ([1], {"y": 2})
    assert _arguments({"args": "not a list"}) == ([], {"args": "not a list"})
    assert _arguments({}) == ([], {})


def test_failures_map_onto_worldpool_errors() -> None:
    error = _failure(ValueError("bad input"), "t.a1", retried=False)
    assert error.retryable and "ValueError: bad input" in str(error)
    assert not _failure(ValueError("x"), "t.a1", retried=True).retryable
    stored = {"exc_type": "KeyError", "exc_message": ["k"]}
    assert "KeyError: k" in str(_failure(stored, "t.a1", retried=False))
    limit = {"exc_type": "TimeLimitExceeded", "exc_message": [5]}
    assert isinstance(_failure(limit, "t.a1", retried=False), TaskTimeoutError)


async def test_a_task_whose_worker_stops_answering_is_lost() -> None:
    monitor = FleetMonitor(None, "q", misses=2, interval_s=3600)
    lost = monitor.watch("t.a1")
    waiting = monitor.watch("t2.a1")  # still in the broker's queue: never started
    monitor.started("t.a1", "w1")
    monitor.observe({"w1", "w2"}, now=1.0)
    monitor.observe({"w2"}, now=2.0)
    assert not lost.done()  # one miss is not enough (a slow reply)
    monitor.observe(set(), now=3.0)  # nobody answered: no verdict
    assert not lost.done()
    monitor.observe({"w2"}, now=4.0)
    assert "w1" in await asyncio.wait_for(lost, 1)
    assert not waiting.done()
    await monitor.close()


async def test_no_answer_for_too_long_loses_everything_in_flight() -> None:
    monitor = FleetMonitor(None, "q", no_consumer_s=5, interval_s=3600)
    lost = monitor.watch("t.a1")
    start = monitor._consumers_seen_at
    monitor.observe(set(), now=start + 1)
    assert not lost.done()
    monitor.observe(set(), now=start + 6)
    assert "no Celery worker" in await asyncio.wait_for(lost, 1)
    await monitor.close()


def test_the_router_spreads_a_burst_and_sends_to_busy_fleets_too() -> None:
    from worldpool.backends.memory import MemoryBackend
    from worldpool.bridges.celery import WorldpoolRouter
    from worldpool.embedded import make_worker

    backend = MemoryBackend()
    router = WorldpoolRouter(backend=backend, refresh_s=3600, record=False)
    try:
        for name in ("fleet-a", "fleet-b"):
            profile = make_worker(
                name, handlers=["t.run"], max_concurrency=1, labels={"celery_queue": name}
            )
            asyncio.run_coroutine_threadsafe(backend.register(profile), router._loop).result(5)
        queues = [router.decide("t.run")[1] for _ in range(4)]
        assert queues[:2] in (["fleet-a", "fleet-b"], ["fleet-b", "fleet-a"])  # by load
        assert None not in queues  # both full: still routed, Celery queues buffer
    finally:
        router.close()
