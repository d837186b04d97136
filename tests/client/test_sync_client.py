"""SyncClient: the async client's surface, blocking, for scripts; embedded (the pool on
the facade's own loop) and against real serve and worker processes over redis-server."""

from __future__ import annotations

import orjson
import pytest

from tests.client.handlers import HANDLERS
from tests.e2e.procs import Cluster
from worldpool import Client, RunFilter, SyncClient, Workflow
from worldpool.embedded import EmbeddedPool
from worldpool.errors import CancelledError, TaskFailedError

NO_RETRY = {"max_retries": 0}


def scenario(client: SyncClient) -> None:
    """What the facade must do in either mode."""
    assert client.run("echo", {"y": 2}, timeout_s=30) == {"y": 2}

    failing = client.submit("boom", {}, retry=NO_RETRY)
    with pytest.raises(TaskFailedError):
        failing.result(timeout_s=30)
    assert failing.status().status.value == "failed"
    assert failing.retry() is True
    assert failing.wait(timeout_s=30).status.value == "failed"
    assert len(failing.status().attempts) == 2
    letters = client.dead_letters()
    assert any(orjson.loads(d.data).get("task_id") == failing.task_id for d in letters)

    logged = client.submit("echo", {"a": 1, "b": 2})
    assert any("echoing 2 keys" in line for line in logged.logs(follow=True, timeout_s=30))
    assert client.task(logged.task_id).result(timeout_s=5) == {"a": 1, "b": 2}

    flow = Workflow("sync-pair")
    one = flow.step("one", handler="echo", payload={"n": 1})
    flow.step("two", handler="boom", after=one, retry=NO_RETRY)
    handle = client.submit_workflow(flow.build())
    with pytest.raises(TaskFailedError) as failed:
        handle.result(timeout_s=30)
    assert failed.value.task_id == f"{handle.workflow_id}.two"
    assert handle.status().status.value == "failed"
    assert handle.step("one").result(timeout_s=5) == {"n": 1}
    assert handle.retry() == ["two"]  # the failed step runs again
    with pytest.raises(TaskFailedError):
        client.workflow(handle.workflow_id).result(timeout_s=30)

    slow = client.submit_workflow(
        {
            "name": "sync-slow",
            "steps": [{"name": "z", "task": {"handler": "nap", "payload": {"s": 30}}}],
        }
    )
    assert slow.cancel() is True
    assert slow.status().status.value == "cancelled"
    with pytest.raises(CancelledError):
        slow.step("z").result(timeout_s=30)

    runs = client.list_runs(RunFilter(kind="workflow", q=handle.workflow_id))
    assert [r.id for r in runs] == [handle.workflow_id]
    tasks = client.list_runs(RunFilter(kind="task", handler="boom"))
    assert {r.id for r in tasks} == {failing.task_id, f"{handle.workflow_id}.two"}


def test_sync_client_embedded() -> None:
    pool = EmbeddedPool(HANDLERS)

    async def started() -> Client:
        await pool.start()
        return pool.client

    client = SyncClient(started())
    try:
        scenario(client)
    finally:
        client._call(pool.stop())
        client.close()


def test_sync_client_against_a_deployment(sync_deployment: Cluster) -> None:
    url, namespace = sync_deployment.redis_url, sync_deployment.namespace
    with SyncClient.connect(url, namespace=namespace) as client:
        scenario(client)
