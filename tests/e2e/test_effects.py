"""Effects through ``ctx.once`` are applied once, with real processes: a worker paused
past its lease (a zombie) and resumed after its task ran elsewhere is fenced before its
effect; the side-effect ledger is a file outside worldpool."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

from tests.e2e.procs import Cluster, Proc, wait_event, wait_task, wait_workers
from tests.e2e.test_chaos import COUNTING, SETTINGS, count_file
from worldpool.backends.base import Backend
from worldpool.models import EventKind, TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator


def effects(path: Path) -> Counter[str]:
    try:
        return Counter(line.split()[0] for line in path.read_text().splitlines())
    except FileNotFoundError:
        return Counter()


def effect_worker(cluster: Cluster, worker_id: str) -> Proc:
    cluster.env["WP_E2E_COUNT_FILE"] = str(count_file(cluster))
    cluster.env["WP_E2E_EFFECT_FILE"] = str(cluster.directory / "effects.log")
    return cluster.worker(
        worker_id, "--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin",
    )  # fmt: skip


async def test_a_resumed_zombie_is_fenced_before_its_effect(
    cluster: Cluster, client: Backend
) -> None:
    cluster.serve()
    zombie = effect_worker(cluster, "zombie")
    await wait_workers(client, [zombie])
    submitter = Orchestrator(client, SETTINGS)
    payload = {"sleep_s": 3, "first_attempt_only": True}
    await submitter.submit(TaskSpec(id="fx", handler="effect", payload=payload))
    await wait_event(client, EventKind.TASK_STARTED, task_id="fx", worker_id="zombie")
    other = effect_worker(cluster, "other")
    await wait_workers(client, [other])
    zombie.signal(signal.SIGSTOP)
    try:
        await wait_event(client, EventKind.WORKER_OFFLINE, worker_id="zombie")
        record = await wait_task(client, "fx")
        await asyncio.sleep(3.5)  # paused past its handler's sleep
    finally:
        zombie.signal(signal.SIGCONT)
    assert record.status is TaskStatus.SUCCEEDED and record.worker_id == "other"
    await asyncio.sleep(3.0)  # the zombie wakes, its handler reaches ctx.once
    ledger = cluster.directory / "effects.log"
    assert effects(ledger) == Counter({"fx": 1}), ledger.read_text()
    assert ledger.read_text().split() == ["fx", "other", "2"]  # the second attempt's token
    final = await client.get_task("fx")
    assert final is not None and final.result == {"task": "fx", "worker": "other", "token": 2}
