"""Guarantees across the bridge: a Celery worker that dies mid-task is a failed attempt
(found by the fleet monitor, not by waiting forever), retried on a live Celery worker."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from types import ModuleType

from tests.bridges.conftest import bridged_pool
from tests.bridges.fleet import celery_env, start_celery_worker, wait_ready
from tests.redis_server import RedisServer
from worldpool.bridges.celery import FleetMonitor
from worldpool.models import RetryPolicy, TaskSpec, TaskStatus


async def test_a_celery_worker_that_dies_is_a_failed_attempt_not_a_hang(
    celery_tasks: ModuleType, redis_server_session: RedisServer, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    env = celery_env(redis_server_session.url, ledger)
    # threads: a worker answers the monitor's broadcasts while it runs a task (solo cannot)
    fleet = [
        start_celery_worker(f"mortal-{n}", ["mortal"], tmp_path, env, pool="threads")
        for n in (1, 2)
    ]
    try:
        wait_ready(fleet)
        monitor = FleetMonitor(
            celery_tasks.app, "mortal", interval_s=0.3, inspect_timeout_s=0.3, misses=2
        )
        async for pool in bridged_pool(
            celery_tasks.app, redis_server_session.url, "mortal", monitor=monitor
        ):
            spec = TaskSpec(
                handler="wp_tests.slow",
                payload={"seconds": 2, "tag": "mortal"},
                retry=RetryPolicy(max_retries=2, backoff_initial_s=0.05),
            )
            await pool.orchestrator.submit(spec)
            deadline = time.monotonic() + 20
            while "start mortal" not in (ledger.read_text() if ledger.exists() else ""):
                assert time.monotonic() < deadline, "the Celery task never started"
                await asyncio.sleep(0.05)
            pid = int(ledger.read_text().split()[3])  # the Celery worker running it
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            record = await pool.orchestrator.wait_task(spec.id, 30)
            assert record.status is TaskStatus.SUCCEEDED, record.error
            first, last = record.attempts[0], record.attempts[-1]
            assert "lost" in (first.error or "") and "mortal-" in (first.error or "")
            assert last.attempt == 2 and record.result["attempt"] == 2
            assert time.monotonic() - killed_at < 15  # bounded, well before any deadline
            ends = [line for line in ledger.read_text().splitlines() if line.startswith("end")]
            assert ends == [f"end mortal {spec.id}.a2 {ends[0].split()[-1]}"]
    finally:
        for proc in fleet:
            proc.kill()
