"""POST /api/v1/tasks and /api/v1/workflows refuse a handler no worker has ever offered
(422, with a did-you-mean) unless the request says ``?later=true``: then the work is held
and its pending reason names the handler."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.support import demo_workflow
from worldpool.testing import EmbeddedPool


def refused(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return str(error["message"])


async def test_a_task_naming_an_unknown_handler_is_refused(
    client: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    message = refused(await client.post("/api/v1/tasks", json={"id": "t-typo", "handler": "ehco"}))
    assert "'ehco'" in message and "did you mean 'echo'" in message and "later" in message
    assert await pool.backend.get_task("t-typo") is None  # nothing was stored
    ok = await client.post("/api/v1/tasks", json={"handler": "echo", "payload": {"x": 1}})
    assert ok.status_code == 201, ok.text


async def test_later_holds_the_task_and_says_which_handler(
    client: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    body = {"id": "t-later", "handler": "summarize"}
    response = await client.post("/api/v1/tasks", params={"later": "true"}, json=body)
    assert response.status_code == 201, response.text
    for _ in range(100):  # the orchestrator records why it waits on its next pass
        record = (await client.get("/api/v1/tasks/t-later")).json()
        if record["pending_reason"]:
            break
        await asyncio.sleep(0.05)
    assert record["status"] == "pending"
    assert "no worker offers handler 'summarize'" in record["pending_reason"]


async def test_a_workflow_step_naming_an_unknown_handler_is_refused(
    client: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    spec = demo_workflow("wf-typo").model_dump(mode="json")
    spec["steps"][1]["task"]["handler"] = "shoot"
    message = refused(await client.post("/api/v1/workflows", json=spec))
    assert "'shoot'" in message and "did you mean 'shot'" in message
    assert await pool.backend.get_workflow("wf-typo") is None
    later = await client.post("/api/v1/workflows", params={"later": "true"}, json=spec)
    assert later.status_code == 201, later.text
    assert later.json()["spec"]["id"] == "wf-typo"
