"""GET /api/v1/tasks/{id}/explain: the full explanation of a task, on demand."""

from __future__ import annotations

import httpx

from tests.api.test_endpoints import wait_task


async def test_a_finished_tasks_full_explanation_is_computed_on_demand(
    client: httpx.AsyncClient,
) -> None:
    task_id = (await client.post("/api/v1/tasks", json={"handler": "echo"})).json()["spec"]["id"]
    record = await wait_task(client, task_id)
    assert record["decision"]["explained"] is False  # the dispatch kept its record lean

    response = await client.get(f"/api/v1/tasks/{task_id}/explain")

    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["explained"] is True
    assert decision["task_id"] == task_id
    assert decision["pool_size"] == 3
    assert len(decision["candidates"]) == 3  # every worker, feasible or not, with verdicts
    assert (await client.get("/api/v1/tasks/nope/explain")).status_code == 404
