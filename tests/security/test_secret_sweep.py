"""The planted-secret sweep over a real deployment (docs/security.md, "Secrets").

A real ``worldpool serve`` (orchestrator and API) and a real ``worldpool worker`` run as
the generated ACL users, with planted values: the Redis users' passwords in their URLs,
the deployment secret, the worker's key, the API token, and a task secret the worker holds
in its environment (``TaskSpec.secrets`` names it by reference). A handler uses the task
secret and tries to leak it everywhere it can (result, error, step log, metadata,
progress). Then every process log, every key of the deployment in Redis (records, events,
dead letters, reply streams), the events and dead letters as the backend reads them,
the API's responses (tasks, results, logs, runs, workers, dead letters, workflows, the
SSE snapshot and a replay of the whole event log) and the dashboard page are searched for
every planted value: none may appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from typing import Any

import httpx
import redis.asyncio as aioredis

from tests.e2e.procs import Cluster, Proc, wait_task, wait_workers
from tests.helpers import free_port
from worldpool.backends.base import Backend
from worldpool.cli.security import acl_rules, setuser_args
from worldpool.config import Settings
from worldpool.identity import worker_key
from worldpool.models import TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator

LEAKY = "tests.security.leaky_handlers:LEAKY"


def _planted() -> dict[str, str]:
    """Fresh values each run, so no other test's output can match by chance."""
    tag = secrets.token_hex(6)
    return {
        "task secret": f"sk-planted-task-{tag}",
        "orchestrator's Redis password": f"planted-orch-pw-{tag}",
        "worker's Redis password": f"planted-worker-pw-{tag}",
        "deployment secret": f"planted-deployment-secret-{tag}",
        "API token": f"planted-api-token-{tag}",
    }


async def _user(cluster: Cluster, name: str, password: str, rules: list[str]) -> str:
    admin = aioredis.Redis.from_url(cluster.redis_url)
    await admin.execute_command(*setuser_args(name, password, rules))
    await admin.aclose()
    return cluster.redis_url.replace("redis://", f"redis://{name}:{password}@")


async def _deploy(cluster: Cluster, plant: dict[str, str]) -> tuple[Proc, Proc, str]:
    ns = cluster.namespace
    port = free_port()
    orch_url = await _user(
        cluster, "orch", plant["orchestrator's Redis password"], acl_rules("orchestrator", ns)
    )
    serve = cluster.spawn(
        "serve",
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--name", "serve"],
        env={
            "WORLDPOOL_REDIS_URL": orch_url,
            "WORLDPOOL_SECRET": plant["deployment secret"],
            "WORLDPOOL_API_TOKEN_ADMIN": plant["API token"],
        },
    )
    worker_url = await _user(
        cluster, "wk-w1", plant["worker's Redis password"], acl_rules("worker", ns, "w1")
    )
    worker = cluster.worker(
        "w1", "--region", "eu-west-1", "--handlers", LEAKY, "--no-builtin",
        env={
            "WORLDPOOL_REDIS_URL": worker_url,
            "WORLDPOOL_WORKER_KEY": worker_key(plant["deployment secret"], "w1"),
            "WP_SWEEP_API_KEY": plant["task secret"],
        },
    )  # fmt: skip
    return serve, worker, f"http://127.0.0.1:{port}"


async def _wait_api(base: str, serve: Proc, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=5) as http:
        while time.monotonic() < deadline:
            assert serve.alive, serve.tail()
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code < 500:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError("the API did not come up\n" + serve.tail())


async def _sse(http: httpx.AsyncClient, url: str, until: str, timeout_s: float = 5.0) -> str:
    """What an SSE stream sends until ``until`` appears in it (or the timeout)."""
    seen = ""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s), http.stream("GET", url) as response:
            assert response.status_code == 200, await response.aread()
            async for chunk in response.aiter_text():
                seen += chunk
                if until in seen:
                    break
    return seen


async def _api_outputs(base: str, headers: dict[str, str], task_ids: list[str]) -> dict[str, str]:
    """Every API response and page worth searching, by what was asked."""
    out: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        paths = ["/healthz", "/api/v1/runs", "/api/v1/runs?kind=task", "/api/v1/workers",
                 "/api/v1/dead-letters", "/api/v1/workflows", "/", "/index.html"]  # fmt: skip
        for task_id in task_ids:
            paths += [f"/api/v1/tasks/{task_id}", f"/api/v1/tasks/{task_id}/result",
                      f"/api/v1/tasks/{task_id}/logs", f"/api/v1/tasks/{task_id}/explain"]  # fmt: skip
        for path in paths:
            response = await http.get(path)
            out[f"GET {path} ({response.status_code})"] = response.text
        assert "sweep-use" in out["GET /api/v1/runs (200)"]  # the searched pages are real
        out["SSE snapshot"] = await _sse(http, "/api/v1/events", "event: snapshot")
        out["SSE replay"] = await _sse(http, "/api/v1/events?after=0-0", "task.failed")
        assert "event: snapshot" in out["SSE snapshot"], out["SSE snapshot"]
        assert "sweep-use" in out["SSE replay"] and "sweep-fail" in out["SSE replay"]
    return out


async def _keyspace(cluster: Cluster) -> bytes:
    """Every key of the deployment and everything it holds, as bytes."""
    admin = aioredis.Redis.from_url(cluster.redis_url)
    parts: list[bytes] = []
    try:
        async for key in admin.scan_iter(match=f"wp:{{{cluster.namespace}}}:*"):
            kind = (await admin.type(key)).decode()
            parts.append(key)
            if kind == "string":
                parts.append(await admin.get(key) or b"")
            elif kind == "hash":
                parts += [b for kv in (await admin.hgetall(key)).items() for b in kv]
            elif kind == "set":
                parts += list(await admin.smembers(key))
            elif kind == "zset":
                parts += [m for m, _ in await admin.zrange(key, 0, -1, withscores=True)]
            elif kind == "stream":
                for _, fields in await admin.xrange(key):
                    parts += [b for kv in fields.items() for b in kv]
            else:
                parts.append(repr(await admin.dump(key)).encode())
    finally:
        await admin.aclose()
    return b"\n".join(parts)


async def test_no_planted_secret_appears_in_any_output(cluster: Cluster, client: Backend) -> None:
    plant = _planted()
    headers = {"Authorization": f"Bearer {plant['API token']}"}
    serve, worker, base = await _deploy(cluster, plant)
    await wait_workers(client, [worker])
    await _wait_api(base, serve, headers)

    # Given tasks that name the secret by reference; the handler uses it and leaks it
    orchestrator = Orchestrator(
        client, Settings(namespace=cluster.namespace, secret=plant["deployment secret"])
    )
    refs = {"API_KEY": "env:WP_SWEEP_API_KEY"}
    await orchestrator.submit(TaskSpec(id="sweep-use", handler="use", secrets=refs))
    await orchestrator.submit(TaskSpec(id="sweep-fail", handler="fail", secrets=refs))
    used = await wait_task(client, "sweep-use", 60)
    failed = await wait_task(client, "sweep-fail", 60)

    # Then the handler got the real value, and what it let slip came back masked
    assert used.status is TaskStatus.SUCCEEDED, cluster.logs()
    digest = hashlib.sha256(plant["task secret"].encode()).hexdigest()[:16]
    assert used.result == {"digest": digest, "echo": "***", "nested": {"header": "Bearer ***"}}
    assert failed.status is TaskStatus.FAILED and "***" in (failed.error or ""), failed
    assert used.spec.secrets == refs  # the record holds the reference only

    # When everything the deployment shows is gathered
    outputs: dict[str, Any] = await _api_outputs(base, headers, ["sweep-use", "sweep-fail"])
    outputs["events (backend)"] = "\n".join(
        e.model_dump_json() for e in await client.read_events(None, 10_000)
    )
    dead = await client.list_dead_letters(1000)
    assert any(d.code == "failed" for d in dead)  # the failed task's letter is there
    outputs["dead letters (backend)"] = "\n".join(f"{d}" for d in dead)
    outputs["Redis keyspace"] = (await _keyspace(cluster)).decode(errors="replace")
    for proc in cluster.procs:
        outputs[f"{proc.name} log"] = proc.log()
    assert "redis://orch:***@" in outputs["serve log"]  # the URL was shown, masked

    # Then no planted value is anywhere in it
    found = [
        f"{what} in {where}"
        for where, text in outputs.items()
        for what, value in plant.items()
        if value in text
    ]
    assert not found, found
