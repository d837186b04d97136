"""The Redis backend's fast lane: one connection for calls made one at a time, the pool for
overlapping calls, and the pool's retries when the lane's connection is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import ResponseError

from tests.redis_server import RedisServer, redis_server, redis_server_session
from worldpool.backends.redis.connection import connect
from worldpool.backends.redis.lane import FastLane

__all__ = ["redis_server", "redis_server_session"]  # fixtures used below

SET_AND_ECHO = "redis.call('SET', KEYS[1], ARGV[1]); return ARGV[1]"


@asynccontextmanager
async def lane_on(url: str, batch: bool = False) -> AsyncIterator[tuple[Any, FastLane]]:
    client = connect(url)
    lane = FastLane(client, batch_when_busy=batch)
    try:
        yield client, lane
    finally:
        await lane.aclose()
        await client.aclose()


async def test_lone_calls_share_one_connection_and_overlapping_ones_use_the_pool(
    redis_server_session: RedisServer,
) -> None:
    async with lane_on(redis_server_session.url) as (_, lane):
        first = await lane.execute("CLIENT", "ID")
        second = await lane.execute("CLIENT", "ID")
        assert first == second, "one connection for calls one at a time"

        # Overlapping calls: one on the lane, the others through the pool, each its own reply.
        replies = await asyncio.gather(
            *(lane.execute("EVAL", SET_AND_ECHO, 1, f"k{i}", i) for i in range(5))
        )
        assert replies == [str(i).encode() for i in range(5)]
        ids = await asyncio.gather(*(lane.execute("CLIENT", "ID") for _ in range(3)))
        assert ids[0] == first and len(set(ids)) > 1


async def test_a_batching_lane_sends_overlapping_calls_together_on_its_own_connection(
    redis_server_session: RedisServer,
) -> None:
    async with lane_on(redis_server_session.url, batch=True) as (client, lane):
        first = await lane.execute("CLIENT", "ID")
        ids = await asyncio.gather(*(lane.execute("CLIENT", "ID") for _ in range(20)))
        assert set(ids) == {first}, "every overlapping call went over the lane"

        # Each waiter gets its own reply, in order, and an error only where it belongs.
        await client.set("n", "x")
        calls = [lane.execute("EVAL", SET_AND_ECHO, 1, f"b{i}", i) for i in range(10)]
        calls.insert(5, lane.execute("INCR", "n"))  # "x" is no integer
        replies = await asyncio.gather(*calls, return_exceptions=True)
        assert replies[:5] + replies[6:] == [str(i).encode() for i in range(10)]
        assert isinstance(replies[5], ResponseError) and "not an integer" in str(replies[5])
        assert [await client.get(f"b{i}") for i in range(10)] == [
            str(i).encode() for i in range(10)
        ]


async def test_a_batching_lane_whose_connection_dies_sends_the_waiting_calls_again(
    redis_server: RedisServer,
) -> None:
    async with lane_on(redis_server.url, batch=True) as (client, lane):
        before = await lane.execute("CLIENT", "ID")
        await client.execute_command("CLIENT", "KILL", "ID", before)
        replies = await asyncio.gather(
            *(lane.execute("EVAL", SET_AND_ECHO, 1, f"d{i}", i) for i in range(8))
        )
        assert replies == [str(i).encode() for i in range(8)]
        assert await lane.execute("CLIENT", "ID") != before, "the lane reconnected"


async def test_a_pipeline_reads_every_reply_even_after_an_error(
    redis_server_session: RedisServer,
) -> None:
    async with lane_on(redis_server_session.url) as (_, lane):
        ok, failed, echoed = await lane.pipeline(
            ("EVAL", SET_AND_ECHO, 1, "k", "a"),
            ("INCR", "k"),  # "a" is no integer
            ("EVAL", SET_AND_ECHO, 1, "k", "b"),
        )
        assert (ok, echoed) == (b"a", b"b")
        assert isinstance(failed, ResponseError) and "not an integer" in str(failed)
        assert await lane.execute("EVAL", SET_AND_ECHO, 1, "k", "c") == b"c", "still in step"


async def test_a_lost_lane_connection_is_retried_through_the_pool_then_reopened(
    redis_server: RedisServer,
) -> None:
    async with lane_on(redis_server.url) as (client, lane):
        before = await lane.execute("CLIENT", "ID")
        await client.execute_command("CLIENT", "KILL", "ID", before)  # the lane's socket dies

        assert await lane.execute("EVAL", SET_AND_ECHO, 1, "k", "v") == b"v", (
            "sent again through the pool"
        )
        after = await lane.execute("CLIENT", "ID")
        assert after != before, "the lane reconnected"

        redis_server.restart()  # a whole Redis restart: the pool's backoff rides it out
        assert await lane.execute("EVAL", SET_AND_ECHO, 1, "k", "w") == b"w"


async def test_a_stalled_lane_connection_is_replaced_by_the_watchdog(
    redis_server_session: RedisServer,
) -> None:
    import time

    from tests.e2e.fault_proxy import FaultProxy

    with FaultProxy(redis_server_session.port) as proxy:
        async with lane_on(f"redis://127.0.0.1:{proxy.port}/0") as (_, lane):
            assert await lane.execute("PING") is True
            assert proxy.freeze() >= 1  # the lane's connection goes silent, for good
            began = time.monotonic()
            assert await lane.execute("PING") is True  # replaced, sent again
            waited = time.monotonic() - began
    assert 2.0 < waited < 6.0, waited
