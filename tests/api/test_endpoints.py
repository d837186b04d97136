"""Every REST endpoint, its happy path and its errors, against the real orchestrator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.api.support import PNG, demo_workflow
from worldpool.testing import EmbeddedPool
from worldpool.worker.handlers import digest_of


async def wait_task(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    for _ in range(300):
        body: dict[str, Any] = (await client.get(f"/api/v1/tasks/{task_id}")).json()
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not end")


async def wait_workflow(client: httpx.AsyncClient, wf_id: str) -> dict[str, Any]:
    for _ in range(300):
        body: dict[str, Any] = (await client.get(f"/api/v1/workflows/{wf_id}")).json()
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow {wf_id} did not end")


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return str(error["message"])


# --------------------------------------------------------------------------- tasks


async def test_submit_task_runs_and_records_attempts_and_decision(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/tasks", json={"handler": "echo", "payload": {"x": 1}})
    assert response.status_code == 201
    task_id = response.json()["spec"]["id"]
    body = await wait_task(client, task_id)
    assert body["status"] == "succeeded"
    assert body["result"] == {"x": 1}
    assert body["attempts"][0]["worker_id"] == body["worker_id"]
    assert body["decision"]["winner"] == body["worker_id"]


async def test_task_errors_change_nothing(client: httpx.AsyncClient, pool: EmbeddedPool) -> None:
    before = await pool.backend.list_tasks()
    bad = [
        (b'{"handler": "echo", ', 400, "malformed_json"),
        (b'{"handler": "echo", "colour": "red"}', 422, "validation_error"),
        (b'{"handler": "echo", "priority": "high"}', 422, "validation_error"),
        (b'{"handler": 7}', 422, "validation_error"),
        (b"[]", 422, "validation_error"),
        (b'{"handler": "echo", "capabilities": ["telepathy"]}', 422, "validation_error"),
    ]
    for body, status, code in bad:
        response = await client.post(
            "/api/v1/tasks", content=body, headers={"Content-Type": "application/json"}
        )
        assert_error(response, status, code)
    message = assert_error(
        await client.post("/api/v1/tasks", json={"handler": "echo", "colour": "red"}), 422
    )
    assert "colour" in message
    assert await pool.backend.list_tasks() == before
    assert await pool.backend.list_pending() == []


async def test_oversized_body_is_413_declared_or_streamed(
    client: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    big = {"handler": "echo", "payload": {"blob": "x" * 70_000}}
    assert_error(await client.post("/api/v1/tasks", json=big), 413, "payload_too_large")

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        yield b'{"handler": "echo", "payload": {"blob": "'
        for _ in range(80):
            yield b"x" * 1000
        yield b'"}}'

    response = await client.post(
        "/api/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    assert await pool.backend.list_tasks() == []


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/tasks/task-nope"),
        ("POST", "/api/v1/tasks/task-nope/cancel"),
        ("GET", "/api/v1/workflows/wf-nope"),
        ("POST", "/api/v1/workflows/wf-nope/cancel"),
        ("GET", "/api/v1/workflows/wf-nope/events"),
        ("GET", "/api/v1/artifacts/sha256:" + "0" * 64),
    ]:
        assert_error(await client.request(method, path), 404)


async def test_cancel_task_then_conflict(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/tasks", json={"handler": "nap", "payload": {"s": 30}})
    task_id = response.json()["spec"]["id"]
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.json() == {"id": task_id, "cancelled": True}
    assert (await client.get(f"/api/v1/tasks/{task_id}")).json()["status"] == "cancelled"
    assert_error(await client.post(f"/api/v1/tasks/{task_id}/cancel"), 409, "conflict")


async def test_explain_is_a_dry_run(client: httpx.AsyncClient, pool: EmbeddedPool) -> None:
    response = await client.post(
        "/api/v1/explain", json={"handler": "nap", "requirements": {"gpu": True}}
    )
    assert response.status_code == 200
    decision = response.json()
    assert decision["winner"] == "tokyo-gpu-1"
    assert decision["pool_size"] == 3
    assert await pool.backend.list_tasks() == []


# --------------------------------------------------------------------------- workflows


async def test_workflow_submit_status_and_list_filters(client: httpx.AsyncClient) -> None:
    t0 = time.time()
    spec = demo_workflow("wf-list-1", nap_s=0.05)
    response = await client.post("/api/v1/workflows", json=spec.model_dump(mode="json"))
    assert response.status_code == 201
    doc = await wait_workflow(client, "wf-list-1")
    assert doc["status"] == "succeeded"
    assert [s["step"] for s in doc["steps"]] == ["plan", "browse", "infer", "report"]
    assert doc["total_tokens"] == 1020
    assert all(s["worker"] and s["region"] for s in doc["steps"])

    other = demo_workflow("wf-list-2").model_copy(update={"name": "nightly"})
    await client.post("/api/v1/workflows", json=other.model_dump(mode="json"))

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/api/v1/workflows", params=params)
        assert response.status_code == 200, response.text
        return [w["id"] for w in response.json()]

    assert await ids() == ["wf-list-2", "wf-list-1"]  # newest first
    assert await ids(status="succeeded") == ["wf-list-1"]
    assert await ids(name="night*") == ["wf-list-2"]
    assert await ids(since=t0 - 60, until=t0 + 3600, name="demo") == ["wf-list-1"]
    assert await ids(until=t0 - 60) == []
    assert_error(await client.get("/api/v1/workflows", params={"status": "sleeping"}), 422)
    assert_error(await client.get("/api/v1/workflows", params={"since": 10, "until": 5}), 422)
    assert_error(await client.get("/api/v1/workflows", params={"limit": 0}), 422)
    await client.post("/api/v1/workflows/wf-list-2/cancel")


async def test_invalid_dag_is_422_and_stores_nothing(
    client: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    spec = demo_workflow("wf-bad").model_dump(mode="json")
    spec["steps"][0]["after"] = ["report"]  # a cycle
    message = assert_error(await client.post("/api/v1/workflows", json=spec), 422)
    assert "cycle" in message.lower() or "report" in message
    spec["steps"][0]["after"] = ["no-such-step"]
    assert_error(await client.post("/api/v1/workflows", json=spec), 422)
    assert_error(await client.post("/api/v1/workflows", json={"name": "x", "steps": []}), 422)
    assert await pool.backend.list_workflows() == []
    assert await pool.backend.list_tasks() == []


async def test_cancel_workflow_then_conflict(client: httpx.AsyncClient) -> None:
    spec = demo_workflow("wf-cancel", nap_s=30)
    await client.post("/api/v1/workflows", json=spec.model_dump(mode="json"))
    response = await client.post("/api/v1/workflows/wf-cancel/cancel")
    assert response.json() == {"id": "wf-cancel", "cancelled": True}
    assert (await client.get("/api/v1/workflows/wf-cancel")).json()["status"] == "cancelled"
    assert_error(await client.post("/api/v1/workflows/wf-cancel/cancel"), 409)


# --------------------------------------------------------------------------- pool, artifacts


async def test_workers_have_region_load_and_heartbeat_age(client: httpx.AsyncClient) -> None:
    workers = (await client.get("/api/v1/workers")).json()
    by_id = {w["id"]: w for w in workers}
    assert set(by_id) == {"tokyo-gpu-1", "virginia-cpu-1", "frankfurt-browser-1"}
    tokyo = by_id["tokyo-gpu-1"]
    assert tokyo["region"] == "ap-northeast-1"
    assert tokyo["gpu"] == "1x H100"
    assert tokyo["status"] == "online"
    assert 0 <= tokyo["load"] <= 1
    assert 0 <= tokyo["heartbeat_age_s"] < 5
    assert -90 <= tokyo["lat"] <= 90 and tokyo["lat"] != 0


async def test_artifact_is_served_verified_and_previewable(
    client: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    task_id = (await client.post("/api/v1/tasks", json={"handler": "shot"})).json()["spec"]["id"]
    record = await wait_task(client, task_id)
    digest = record["outputs"]["page.png"]["digest"]
    assert digest == digest_of(PNG)
    response = await client.get(f"/api/v1/artifacts/{digest}")
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"

    text = b"plain bytes"
    await pool.backend.put_blob(digest_of(text), text)
    response = await client.get(f"/api/v1/artifacts/{digest_of(text)}")
    assert response.headers["content-type"] == "application/octet-stream"
    assert "attachment" in response.headers["content-disposition"]

    fake = digest_of(b"what the digest promises")
    await pool.backend.put_blob(fake, b"something else")
    assert_error(await client.get(f"/api/v1/artifacts/{fake}"), 409, "corrupt")
    assert_error(await client.get("/api/v1/artifacts/md5:abc"), 422)


# --------------------------------------------------------------------------- system


async def test_healthz_openapi_dashboard(client: httpx.AsyncClient) -> None:
    health = (await client.get("/healthz", headers={"Authorization": ""})).json()
    assert health == {"status": "ok", "backend": "memory", "workers_online": 3}
    schema = (await client.get("/openapi.json")).json()
    for path in ["/api/v1/tasks", "/api/v1/workflows/{workflow_id}/events", "/api/v1/explain"]:
        assert path in schema["paths"]
    page = await client.get("/", headers={"Authorization": ""})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]


async def test_metrics_follow_the_event_log(client: httpx.AsyncClient) -> None:
    ok = (await client.post("/api/v1/tasks", json={"handler": "echo"})).json()["spec"]["id"]
    bad = (
        await client.post(
            "/api/v1/tasks",
            json={
                "handler": "boom",
                "retry": {"max_retries": 1, "backoff_initial_s": 0, "jitter": False},
            },
        )
    ).json()["spec"]["id"]
    await wait_task(client, ok)
    await wait_task(client, bad)
    text = ""
    for _ in range(100):  # the consumer follows the log asynchronously
        text = (await client.get("/metrics")).text
        if 'worldpool_tasks_failed_total{handler="boom"' in text:
            break
        await asyncio.sleep(0.05)
    assert 'worldpool_tasks_submitted_total{handler="echo"} 1.0' in text
    assert 'worldpool_tasks_succeeded_total{handler="echo",worker="' in text
    assert 'worldpool_tasks_retried_total{handler="boom",worker="' in text
    assert 'worldpool_tasks_failed_total{handler="boom",worker="' in text
    assert "worldpool_task_run_seconds_bucket" in text
    assert 'worldpool_worker_up{region="ap-northeast-1",worker="tokyo-gpu-1"} 1.0' in text


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/tasks/x/explode"])
async def test_unknown_routes_are_json_404(client: httpx.AsyncClient, path: str) -> None:
    assert_error(await client.get(path), 404, "not_found")
