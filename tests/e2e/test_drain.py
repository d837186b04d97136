"""SIGTERM drain with real processes: what has not started goes back at once, running
handlers get ``--drain-timeout-s``, then are stopped (a sync handler deaf to its stop
ends with the process) and handed back; nothing of theirs runs on after the drain."""

from __future__ import annotations

import asyncio
import time

import psutil

from tests.e2e.deaf import counting_worker, effect_file, start_deaf
from tests.e2e.handlers import executions
from tests.e2e.procs import Cluster, wait_workers
from tests.e2e.test_chaos import count_file, wait_all
from worldpool.backends.base import Backend
from worldpool.models import TaskStatus


async def test_sigterm_drain_stops_deaf_handlers_after_the_grace_and_hands_back(
    cluster: Cluster, client: Backend
) -> None:
    cluster.serve()
    draining = counting_worker(
        cluster, "draining", "--max-concurrency", "2", "--drain-timeout-s", "1"
    )
    await wait_workers(client, [draining])
    ids = ["deaf-0", "deaf-1"]
    await start_deaf(cluster, client, "stubborn", ids, {"sleep_s": 20, "first_attempt_only": True})
    rescuer = counting_worker(cluster, "rescuer")
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
    rows = executions(count_file(cluster))  # the draining process has exited: final
    assert not [r for r in rows if r[2] == "draining" and r[3] == "end"], rows  # stopped
    assert "ignored the stop" in draining.log()


async def test_sigterm_drain_kills_deaf_sync_handlers_run_in_processes(
    cluster: Cluster, client: Backend
) -> None:
    """``--sync-handlers process``: the deaf handlers' processes are killed at the end of
    the grace, so nothing of theirs runs on (not even until the worker exits): each effect
    is applied once, by the attempt that ran elsewhere."""
    cluster.serve()
    draining = counting_worker(
        cluster, "draining", "--max-concurrency", "2", "--drain-timeout-s", "1",
        "--sync-handlers", "process",
    )  # fmt: skip
    await wait_workers(client, [draining])
    ids = ["deaf-p0", "deaf-p1"]
    await start_deaf(cluster, client, "effect", ids, {"sleep_s": 20, "first_attempt_only": True})
    children = psutil.Process(draining.pid).children(recursive=True)
    assert len(children) == 2, [c.cmdline() for c in children]  # one per busy slot
    rescuer = counting_worker(cluster, "rescuer")
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
    assert sorted(effect_file(cluster).read_text().splitlines()) == [f"{t} rescuer 2" for t in ids]
    assert "ignored the stop" not in draining.log()


async def test_a_sigkilled_worker_takes_its_handler_processes_with_it(
    cluster: Cluster, client: Backend
) -> None:
    """A worker that dies without a word (SIGKILL) leaves no child behind: each child
    exits when its socket to the worker closes."""
    cluster.serve()
    victim = counting_worker(
        cluster, "victim", "--max-concurrency", "2", "--sync-handlers", "process"
    )
    await wait_workers(client, [victim])
    await start_deaf(cluster, client, "stubborn", ["orphan"], {"sleep_s": 30})
    children = psutil.Process(victim.pid).children(recursive=True)
    assert children  # the busy one (and the one started with the worker, if idle)
    victim.kill()
    _, alive = await asyncio.to_thread(psutil.wait_procs, children, 5.0)
    assert not alive, [p.pid for p in alive]
