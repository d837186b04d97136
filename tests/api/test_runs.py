"""Runs: the list with filters and paging, a task's logs, retry of tasks and workflows."""

from __future__ import annotations

import httpx

from tests.api.test_endpoints import assert_error, wait_task, wait_workflow


async def test_runs_lists_tasks_and_workflows_with_filters_and_paging(
    client: httpx.AsyncClient,
) -> None:
    ids = []
    for n in range(3):
        r = await client.post("/api/v1/tasks", json={"handler": "echo", "payload": {"n": n}})
        ids.append(r.json()["spec"]["id"])
    flow = {"name": "w", "steps": [{"name": "a", "task": {"handler": "echo", "payload": {}}}]}
    wf = (await client.post("/api/v1/workflows", json=flow)).json()["spec"]["id"]
    for task_id in ids:
        await wait_task(client, task_id)
    await wait_workflow(client, wf)

    body = (await client.get("/api/v1/runs")).json()
    assert body["total"] == 5  # 3 tasks, the workflow and its step
    assert {r["kind"] for r in body["runs"]} == {"task", "workflow"}
    created = [r["created_at"] for r in body["runs"]]
    assert created == sorted(created, reverse=True)  # newest first

    tasks = (await client.get("/api/v1/runs", params={"kind": "task", "q": wf})).json()
    assert [r["workflow_id"] for r in tasks["runs"]] == [wf]
    assert tasks["runs"][0]["worker"] and tasks["runs"][0]["region"]

    page = (await client.get("/api/v1/runs", params={"handler": "ech*", "limit": 2})).json()
    assert page["total"] == 4 and len(page["runs"]) == 2
    rest = (await client.get("/api/v1/runs", params={"handler": "ech*", "offset": 2})).json()
    assert {r["id"] for r in page["runs"]}.isdisjoint({r["id"] for r in rest["runs"]})
    assert (await client.get("/api/v1/runs", params={"status": "failed"})).json()["total"] == 0
    assert_error(await client.get("/api/v1/runs", params={"since": 2, "until": 1}), 422)
    assert_error(await client.get("/api/v1/runs", params={"kind": "job"}), 422)


async def test_logs_come_in_pages_and_say_when_done(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/tasks", json={"handler": "nap", "payload": {"s": 0.05}})
    task_id = r.json()["spec"]["id"]
    await wait_task(client, task_id)
    body = (await client.get(f"/api/v1/tasks/{task_id}/logs")).json()
    assert body["done"] is True
    assert [line["text"] for line in body["lines"]][-1].endswith("napped")
    after = (
        await client.get(f"/api/v1/tasks/{task_id}/logs", params={"after": body["next"]})
    ).json()
    assert after["lines"] == [] and after["next"] == body["next"]
    assert_error(await client.get("/api/v1/tasks/nope/logs"), 404)


async def test_retry_a_failed_task_gives_it_a_fresh_budget(client: httpx.AsyncClient) -> None:
    spec = {
        "handler": "boom",
        "payload": {},
        "retry": {"max_retries": 1, "backoff_initial_s": 0.01},
    }
    task_id = (await client.post("/api/v1/tasks", json=spec)).json()["spec"]["id"]
    first = await wait_task(client, task_id)
    assert first["status"] == "failed" and len(first["attempts"]) == 2
    r = await client.post(f"/api/v1/tasks/{task_id}/retry")
    assert r.status_code == 200, r.text
    again = await wait_task(client, task_id)
    assert again["status"] == "failed"
    assert [a["attempt"] for a in again["attempts"]] == [1, 2, 3, 4]  # fenced, budget fresh
    ok = (await client.post("/api/v1/tasks", json={"handler": "echo", "payload": {}})).json()
    await wait_task(client, ok["spec"]["id"])
    message = assert_error(await client.post(f"/api/v1/tasks/{ok['spec']['id']}/retry"), 409)
    assert "succeeded" in message
    assert_error(await client.post("/api/v1/tasks/nope/retry"), 404)


async def test_retry_a_workflow_runs_on_from_its_failed_step(client: httpx.AsyncClient) -> None:
    flow = {
        "name": "on-from-failure",
        "steps": [
            {"name": "a", "task": {"handler": "echo", "payload": {}}},
            {
                "name": "b",
                "after": ["a"],
                "task": {"handler": "flaky", "payload": {}, "retry": {"max_retries": 0}},
            },
            {"name": "c", "after": ["b"], "task": {"handler": "echo", "payload": {}}},
        ],
    }
    wf = (await client.post("/api/v1/workflows", json=flow)).json()["spec"]["id"]
    failed = await wait_workflow(client, wf)
    assert failed["status"] == "failed"
    r = await client.post(f"/api/v1/workflows/{wf}/retry")
    assert r.status_code == 200, r.text
    assert r.json() == {"workflow_id": wf, "retried_steps": ["b"]}
    done = await wait_workflow(client, wf)
    assert done["status"] == "succeeded"
    steps = {s["step"]: s for s in done["steps"]}
    assert steps["b"]["attempts"] == 2 and steps["c"]["status"] == "succeeded"
    assert steps["a"]["attempts"] == 1  # the step that had succeeded did not run again
    assert_error(await client.post(f"/api/v1/workflows/{wf}/retry"), 409)


async def test_result_of_a_finished_task_and_409_before(client: httpx.AsyncClient) -> None:
    ok = (await client.post("/api/v1/tasks", json={"handler": "echo", "payload": {"n": 7}})).json()
    await wait_task(client, ok["spec"]["id"])
    body = (await client.get(f"/api/v1/tasks/{ok['spec']['id']}/result")).json()
    assert body == {
        "task_id": ok["spec"]["id"],
        "status": "succeeded",
        "result": {"n": 7},
        "error": None,
    }
    spec = {"handler": "boom", "payload": {}, "retry": {"max_retries": 0}}
    bad = (await client.post("/api/v1/tasks", json=spec)).json()["spec"]["id"]
    await wait_task(client, bad)
    failed = (await client.get(f"/api/v1/tasks/{bad}/result")).json()
    assert failed["status"] == "failed" and failed["result"] is None and failed["error"]
    slow = (
        await client.post("/api/v1/tasks", json={"handler": "nap", "payload": {"s": 30}})
    ).json()
    message = assert_error(await client.get(f"/api/v1/tasks/{slow['spec']['id']}/result"), 409)
    assert "ask again" in message
    await client.post(f"/api/v1/tasks/{slow['spec']['id']}/cancel")
    assert_error(await client.get("/api/v1/tasks/nope/result"), 404)
