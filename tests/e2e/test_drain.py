"""SIGTERM drain with real processes: what has not started goes back at once, running
handlers get ``--drain-timeout-s``, then are stopped (a sync handler deaf to its stop
ends with the process) and handed back; nothing of theirs runs on after the drain."""

from __future__ import annotations

import asyncio
import time

import psutil

from tests.e2e.handlers import executions
from tests.e2e.procs import Cluster, wait_workers
from tests.e2e.test_chaos import COUNTING, SETTINGS, count_file, wait_all, wait_count
from worldpool.backends.base import Backend
from worldpool.models import TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator


async def test_sigterm_drain_stops_deaf_handlers_after_the_grace_and_hands_back(
    cluster: Cluster, client: Backend
) -> None:
    cluster.serve()
    draining = cluster.worker(
        "draining", "--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin",
        "--max-concurrency", "2", "--drain-timeout-s", "1",
        env={"WP_E2E_COUNT_FILE": str(count_file(cluster))},
    )  # fmt: skip
    await wait_workers(client, [draining])
    submitter = Orchestrator(client, SETTINGS)
    ids = ["deaf-0", "deaf-1"]
    for task_id in ids:
        payload = {"sleep_s": 20, "first_attempt_only": True}
        await submitter.submit(TaskSpec(id=task_id, handler="stubborn", payload=payload))
    await wait_count(cluster, "start", 2)
    rescuer = cluster.worker(
        "rescuer", "--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin",
        env={"WP_E2E_COUNT_FILE": str(count_file(cluster))},
    )  # fmt: skip
    await wait_workers(client, [rescuer])

    termed = time.monotonic()
    code = await asyncio.to_thread(draining.terminate, 15.0)
    exit_s = time.monotonic() - termed
    assert code == 0, draining.tail()
    assert exit_s < 6.0, f"drain took {exit_s:.1f}s with a 1 s grace\n{draining.tail()}"
    await wait_all(client, ids, cluster, timeout_s=30)
    handed_back_s = time.monotonic() - termed
    print(
        f"drain: exited {exit_s:.2f}s after SIGTERM (grace 1 s); done elsewhere {handed_back_s:.2f}s"
    )
    records = await client.get_tasks(ids)
    assert all(r is not None and r.status is TaskStatus.SUCCEEDED for r in records)
    assert all(r is not None and r.worker_id == "rescuer" for r in records)
    await asyncio.sleep(1.0)
    rows = executions(count_file(cluster))
    assert not [r for r in rows if r[2] == "draining" and r[3] == "end"], rows  # stopped
    assert "ignored the stop" in draining.log()


async def test_sigterm_drain_kills_deaf_sync_handlers_run_in_processes(
    cluster: Cluster, client: Backend
) -> None:
    """``--sync-handlers process``: the deaf handlers' processes are killed at the end of
    the grace, so nothing of theirs runs on (not even until the worker exits): each effect
    is applied once, by the attempt that ran elsewhere."""
    cluster.serve()
    effects = cluster.directory / "effects.log"
    env = {"WP_E2E_COUNT_FILE": str(count_file(cluster)), "WP_E2E_EFFECT_FILE": str(effects)}
    draining = cluster.worker(
        "draining", "--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin",
        "--max-concurrency", "2", "--drain-timeout-s", "1", "--sync-handlers", "process",
        env=env,
    )  # fmt: skip
    await wait_workers(client, [draining])
    submitter = Orchestrator(client, SETTINGS)
    ids = ["deaf-p0", "deaf-p1"]
    for task_id in ids:
        payload = {"sleep_s": 20, "first_attempt_only": True}
        await submitter.submit(TaskSpec(id=task_id, handler="effect", payload=payload))
    await wait_count(cluster, "start", 2)
    children = psutil.Process(draining.pid).children(recursive=True)
    assert len(children) == 2, [c.cmdline() for c in children]  # one per busy slot
    rescuer = cluster.worker(
        "rescuer", "--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin", env=env
    )
    await wait_workers(client, [rescuer])

    termed = time.monotonic()
    code = await asyncio.to_thread(draining.terminate, 15.0)
    exit_s = time.monotonic() - termed
    assert code == 0, draining.tail()
    assert exit_s < 6.0, f"drain took {exit_s:.1f}s with a 1 s grace\n{draining.tail()}"
    assert not [c.pid for c in children if psutil.pid_exists(c.pid)]  # killed, not orphaned
    await wait_all(client, ids, cluster, timeout_s=30)
    print(f"drain (process mode): exited {exit_s:.2f}s after SIGTERM (grace 1 s)")
    records = await client.get_tasks(ids)
    assert all(r is not None and r.status is TaskStatus.SUCCEEDED for r in records)
    assert all(r is not None and r.worker_id == "rescuer" for r in records)
    rows = executions(count_file(cluster))
    assert not [r for r in rows if r[2] == "draining" and r[3] == "end"], rows
    assert sorted(effects.read_text().splitlines()) == [f"{t} rescuer 2" for t in ids]
    assert "ignored the stop" not in draining.log()


async def test_a_sigkilled_worker_takes_its_handler_processes_with_it(
    cluster: Cluster, client: Backend
) -> None:
    """A worker that dies without a word (SIGKILL) leaves no child behind: each child
    exits when its socket to the worker closes."""
    cluster.serve()
    victim = cluster.worker(
        "victim", "--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin",
        "--max-concurrency", "2", "--sync-handlers", "process",
        env={"WP_E2E_COUNT_FILE": str(count_file(cluster))},
    )  # fmt: skip
    await wait_workers(client, [victim])
    submitter = Orchestrator(client, SETTINGS)
    await submitter.submit(TaskSpec(id="orphan", handler="stubborn", payload={"sleep_s": 30}))
    await wait_count(cluster, "start", 1)
    children = psutil.Process(victim.pid).children(recursive=True)
    assert children  # the busy one (and the one started with the worker, if idle)
    victim.kill()
    _, alive = await asyncio.to_thread(psutil.wait_procs, children, 5.0)
    assert not alive, [p.pid for p in alive]
