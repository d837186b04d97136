"""Server-Sent Events: live status documents, heartbeats, and resume without loss."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.support import ADMIN, build_app, demo_workflow, serving
from worldpool.cli.watch import SseMessage, iter_sse
from worldpool.models import Event, EventKind
from worldpool.testing import EmbeddedPool

AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def url(pool: EmbeddedPool) -> AsyncIterator[str]:
    async with serving(build_app(pool, sse_ping_s=0.2, max_streams=2)) as base:
        yield base


async def read_messages(
    client: httpx.AsyncClient,
    path: str,
    *,
    until: Any,
    headers: dict[str, str] | None = None,
    limit: int = 500,
) -> list[SseMessage]:
    """Messages from ``path`` until ``until(message)`` is true (bounded)."""
    got: list[SseMessage] = []
    async with (
        asyncio.timeout(30),
        client.stream("GET", path, headers={**AUTH, **(headers or {})}) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for message in iter_sse(response.aiter_lines()):
            got.append(message)
            if until(message) or len(got) >= limit:
                break
    return got


async def test_workflow_stream_carries_status_documents(url: str, pool: EmbeddedPool) -> None:
    await pool.orchestrator.submit_workflow(demo_workflow("wf-sse", nap_s=0.05))
    async with httpx.AsyncClient(base_url=url) as client:
        got = await read_messages(
            client,
            "/api/v1/workflows/wf-sse/events",
            until=lambda m: m.event == "workflow.succeeded",
        )
    first = got[0]
    assert first.event == "snapshot"  # a fresh connection starts with the current state
    assert first.json()["status"]["id"] == "wf-sse"
    for message in got[1:]:
        body = message.json()
        assert body["event"]["workflow_id"] == "wf-sse"
        assert body["event"]["seq"] == message.id
        assert body["status"]["id"] == "wf-sse"
    assert got[-1].json()["status"]["status"] == "succeeded"


async def test_resume_with_last_event_id_misses_nothing(url: str, pool: EmbeddedPool) -> None:
    # Given a client following the whole deployment
    backend = pool.backend
    async with httpx.AsyncClient(base_url=url) as client:
        start = asyncio.Event()

        async def first_connection() -> list[SseMessage]:
            got: list[SseMessage] = []
            async with client.stream("GET", "/api/v1/events", headers=AUTH) as response:
                async for message in iter_sse(response.aiter_lines()):
                    got.append(message)
                    start.set()
                    if len(got) >= 6:  # When it drops mid-workflow
                        return got
            return got

        reader = asyncio.create_task(first_connection())
        await asyncio.wait_for(start.wait(), 10)  # the snapshot arrived: the stream is live
        await pool.orchestrator.submit_workflow(demo_workflow("wf-resume", nap_s=0.05))
        first = await asyncio.wait_for(reader, 30)
        snapshot_seq = first[0].id
        last_id = first[-1].id
        assert last_id is not None
        await pool.orchestrator.wait_workflow("wf-resume", 30)  # events keep coming meanwhile

        # And reconnects with Last-Event-ID
        second = await read_messages(
            client,
            "/api/v1/events",
            headers={"Last-Event-ID": last_id},
            until=lambda m: m.event == "workflow.succeeded",
        )

    # Then every event the log holds after the snapshot arrived exactly once, in order
    log: list[Event] = await backend.read_events(after=snapshot_seq, limit=10_000)
    expected = [e.seq for e in log]
    received = [m.id for m in first[1:] + second]
    assert received == expected[: len(received)]
    assert received[-1] == next(e.seq for e in log if e.kind is EventKind.WORKFLOW_SUCCEEDED)
    assert len(set(received)) == len(received)


async def test_heartbeat_comments_keep_idle_streams_alive(url: str) -> None:
    async with (
        httpx.AsyncClient(base_url=url) as client,
        asyncio.timeout(10),
        client.stream("GET", "/api/v1/events", headers=AUTH) as response,
    ):
        lines: list[str] = []
        async for line in response.aiter_lines():
            lines.append(line)
            if line.startswith(": ping"):
                break
    assert lines[0] == "event: snapshot" or "event: snapshot" in lines


async def test_stream_errors(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/api/v1/workflows/nope/events", headers=AUTH)
        assert response.status_code == 404
        response = await client.get(
            "/api/v1/events", headers={**AUTH, "Last-Event-ID": "drop table"}
        )
        assert response.status_code == 422
        assert "Last-Event-ID" in response.json()["error"]["message"]


async def test_streams_per_app_are_bounded(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        opened = asyncio.Semaphore(0)
        release = asyncio.Event()

        async def hold() -> None:
            async with client.stream("GET", "/api/v1/events", headers=AUTH) as response:
                # Keep the reader referenced: a dropped async generator is closed by the
                # garbage collector, which closes the response and frees the server's place.
                messages = iter_sse(response.aiter_lines())
                await anext(messages)
                opened.release()
                await release.wait()
                await messages.aclose()

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        async with asyncio.timeout(20):
            for _ in holders:
                await opened.acquire()
            async with client.stream("GET", "/api/v1/events", headers=AUTH) as third:
                assert third.status_code == 503
                body = await third.aread()
        assert b"busy" in body
        release.set()
        await asyncio.gather(*holders)
