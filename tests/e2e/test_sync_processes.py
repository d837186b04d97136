"""``worldpool worker --sync-handlers process`` with real processes: ``worldpool cancel``
of a sync handler deaf to ``ctx.cancelled`` kills its process after the grace; what it
would have done afterwards (its end, its effect) never happens, and its slot takes the
next task at once."""

from __future__ import annotations

import asyncio
import time

import psutil

from tests.e2e.deaf import counting_worker, effect_file, start_deaf
from tests.e2e.handlers import executions
from tests.e2e.procs import Cluster, wait_task, wait_workers
from tests.e2e.test_chaos import count_file
from worldpool.backends.base import Backend
from worldpool.models import TaskSpec, TaskStatus


async def test_cancel_kills_a_deaf_sync_handler_and_frees_its_slot(
    cluster: Cluster, client: Backend
) -> None:
    cluster.serve()
    worker = counting_worker(
        cluster, "w1", "--max-concurrency", "1", "--sync-handlers", "process",
        "--cancel-grace-s", "0.5",
    )  # fmt: skip
    await wait_workers(client, [worker])
    sleep_s = 6.0
    submitter = await start_deaf(cluster, client, "effect", ["deaf"], {"sleep_s": sleep_s})
    started = time.monotonic()
    (child,) = psutil.Process(worker.pid).children(recursive=True)  # the one slot's

    done = await asyncio.to_thread(cluster.cli, "cancel", "deaf")
    assert done.returncode == 0, done.stderr
    cancelled = time.monotonic()
    _, alive = await asyncio.to_thread(psutil.wait_procs, [child], sleep_s)
    gone_s = time.monotonic() - cancelled
    assert not alive  # killed, well before its sleep would have ended
    await submitter.submit(TaskSpec(id="next", handler="count", payload={"sleep_s": 0}))
    after = await wait_task(client, "next", timeout_s=20)
    next_s = time.monotonic() - cancelled
    assert after.status is TaskStatus.SUCCEEDED and after.worker_id == "w1"

    await asyncio.sleep(max(0.0, started + sleep_s + 1.0 - time.monotonic()))
    print(f"cancel (process mode): child gone {gone_s:.2f}s after it, next task done {next_s:.2f}s")
    record = await client.get_task("deaf")
    assert record is not None and record.status is TaskStatus.CANCELLED
    assert [r[3] for r in executions(count_file(cluster)) if r[0] == "deaf"] == ["start"]
    assert not effect_file(cluster).exists()  # its ctx.once after the sleep never ran
    assert "ignored its stop" in worker.log()
