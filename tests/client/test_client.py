"""worldpool.Client: the same code embedded and against real serve and worker processes
(the ``deployment`` fixture, tests/client/conftest.py; SyncClient: test_sync_client.py)."""

from __future__ import annotations

import time

import pytest

from tests.client.handlers import HANDLERS
from tests.helpers import free_port
from worldpool import Client, ResultTimeout, RunFilter, Workflow
from worldpool.embedded import EmbeddedPool
from worldpool.errors import BackendError, CancelledError, TaskFailedError, ValidationError

FAST_RETRY = {"max_retries": 1, "backoff_initial_s": 0.01}


async def exercise(client: Client) -> None:
    """What every mode must do alike."""
    assert await client.run("echo", {"x": 1}, timeout_s=30) == {"x": 1}

    failing = await client.submit("boom", {}, retry=FAST_RETRY)
    with pytest.raises(TaskFailedError) as failed:
        await failing.result(timeout_s=30)
    assert failed.value.attempts == 2 and "boom on purpose" in str(failed.value.error)
    assert await failing.retry() is True
    with pytest.raises(TaskFailedError) as again:
        await failing.result(timeout_s=30)
    assert again.value.attempts == 4  # a fresh budget, the attempts kept

    slow = await client.submit("nap", {"s": 30})
    with pytest.raises(ResultTimeout) as waited:
        await slow.result(timeout_s=0.3)
    assert isinstance(waited.value, TimeoutError)
    assert await slow.cancel() is True
    with pytest.raises(CancelledError):
        await slow.result(timeout_s=30)

    logged = await client.submit("echo", {"a": 1, "b": 2})
    lines = [line async for line in logged.logs(follow=True, timeout_s=30)]
    assert any("echoing 2 keys" in line for line in lines)

    flow = Workflow("pair")
    one = flow.step("one", handler="echo", payload={"n": 1})
    flow.step("two", handler="echo", payload={"n": 2}, after=one)
    handle = await client.submit_workflow(flow.build())
    status = await handle.result(timeout_s=30)
    assert [s.status for s in status.steps] == ["succeeded", "succeeded"]
    assert await handle.step("two").result(timeout_s=5) == {"n": 2}

    runs = await client.list_runs(RunFilter(kind="workflow", q=handle.workflow_id))
    assert [r.id for r in runs] == [handle.workflow_id]
    cancelled = await client.list_runs(RunFilter(kind="task", status="cancelled"))
    assert [r.id for r in cancelled] == [slow.task_id]

    with pytest.raises(ValidationError, match="priority"):
        await client.submit("echo", {}, priority="urgent")


async def test_embedded_pool_hands_out_the_client() -> None:
    async with EmbeddedPool(HANDLERS) as pool:
        await exercise(pool.client)


async def test_the_same_code_against_serve_and_a_worker_process(deployment: Client) -> None:
    await exercise(deployment)


async def test_a_redis_that_is_down_fails_fast_without_the_password() -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(BackendError) as refused:
        await Client.connect(url)
    assert "hunter2-secret" not in str(refused.value)
    assert "127.0.0.1" in str(refused.value)
    assert time.monotonic() - started < 15


async def test_connect_without_a_url_says_what_to_do() -> None:
    with pytest.raises(ValidationError, match="EmbeddedPool"):
        await Client.connect("")
