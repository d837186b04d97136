"""A value too large for a record goes to the artifact store, and every way of reading a
result (the handle, ``worldpool result``, the HTTP API) returns the full value, checked
against its digest. A value over the hard cap fails the task, not retried."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.support import READ, TOKENS
from tests.client.deployment import deployed
from tests.client.handlers import HANDLERS
from tests.e2e.procs import Cluster
from worldpool import Client, Workflow
from worldpool.api import create_app
from worldpool.artifacts.store import DirectoryBlobStore
from worldpool.config import Settings
from worldpool.embedded import EmbeddedPool
from worldpool.errors import ArtifactError, TaskFailedError
from worldpool.models import TaskStatus

MB5 = 5_000_000


async def large_and_too_large(client: Client, cap_mb: float) -> None:
    """What both modes must do alike (``cap_mb``: the deployment's result_max_bytes)."""
    handle = await client.submit("big", {"mb": 5})
    value = await handle.result(timeout_s=60)
    assert isinstance(value, dict) and len(value["blob"]) == MB5 and value["mb"] == 5
    record = await handle.status()
    assert record.status is TaskStatus.SUCCEEDED
    assert record.result is None and record.result_ref is not None
    assert record.result_ref.size > MB5 and record.result_ref.media_type == "application/json"
    assert len(record.model_dump_json()) < 100_000  # the record holds only the reference

    small = await client.submit("big", {"mb": 0.001})
    assert (await small.result(timeout_s=60))["mb"] == 0.001
    assert (await small.status()).result_ref is None  # a small value stays inline

    over = await client.submit("big", {"mb": cap_mb * 1.1}, retry={"max_retries": 3})
    with pytest.raises(TaskFailedError) as failed:
        await over.result(timeout_s=60)
    message = str(failed.value.error)
    assert "over the limit of" in message and "result_max_bytes" in message
    assert failed.value.attempts == 1  # not retried: it would be as large again


async def test_embedded_large_result_goes_to_the_artifact_store() -> None:
    settings = Settings(heartbeat_s=0.25, result_max_bytes=8_000_000)
    async with EmbeddedPool(HANDLERS, settings=settings) as pool:
        await large_and_too_large(pool.client, cap_mb=8)


async def test_a_large_step_value_reaches_the_next_step_as_an_input() -> None:
    async with EmbeddedPool(HANDLERS) as pool:
        flow = Workflow("large-then-measure")
        first = flow.step("first", handler="big", payload={"mb": 1})
        flow.step("second", handler="measure", after=first)
        handle = await pool.client.submit_workflow(flow.build())
        await handle.result(timeout_s=60)
        ref = (await handle.step("first").status()).result_ref
        assert ref is not None
        assert await handle.step("second").result(timeout_s=5) == {"first/result.json": ref.size}


async def test_a_corrupt_stored_result_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        heartbeat_s=0.25,
        artifact_store=str(tmp_path / "blobs"),
        result_inline_max_bytes=1000,
        inline_artifact_max_bytes=0,  # every artifact in the directory
    )
    async with EmbeddedPool(HANDLERS, settings=settings) as pool:
        handle = await pool.client.submit("big", {"mb": 0.01})
        await handle.wait(timeout_s=30)
        ref = (await handle.status()).result_ref
        assert ref is not None
        path = DirectoryBlobStore(tmp_path / "blobs").path_for(ref.digest)
        path.write_bytes(path.read_bytes().replace(b"xxxx", b"yyyy", 1))
        with pytest.raises(ArtifactError, match="corrupt"):
            await handle.result(timeout_s=5)


async def test_api_returns_the_full_large_value() -> None:
    async with EmbeddedPool(HANDLERS) as pool:
        handle = await pool.client.submit("big", {"mb": 1})
        await handle.wait(timeout_s=30)
        app = create_app(pool.orchestrator, pool.settings, tokens=TOKENS)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=transport,
                base_url="http://t",
                headers={"Authorization": f"Bearer {READ}"},
            ) as http,
        ):
            reply = await http.get(f"/api/v1/tasks/{handle.task_id}/result")
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["status"] == "succeeded" and len(body["result"]["blob"]) == 1_000_000


@pytest.fixture
async def deployment(cluster: Cluster) -> AsyncIterator[Client]:
    async with deployed(cluster, env={"WORLDPOOL_RESULT_MAX_BYTES": "8000000"}) as client:
        yield client


async def test_deployment_large_result_through_redis(deployment: Client, cluster: Cluster) -> None:
    await large_and_too_large(deployment, cap_mb=8)
    handle = await deployment.submit("big", {"mb": 5})
    await handle.wait(timeout_s=60)
    shown = await asyncio.to_thread(
        cluster.cli,
        "result",
        handle.task_id,
        "--redis",
        cluster.redis_url,
        "--namespace",
        cluster.namespace,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert len(json.loads(shown.stdout)["blob"]) == MB5
