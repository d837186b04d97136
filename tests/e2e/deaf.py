"""The set-up the drain and cancel tests with real processes share: a worker in eu-west-1
that runs only the counting handlers (``handlers.py``: each start and end goes to the
count file, each ``ctx.once`` effect to the effect file), and tasks whose handlers are
deaf to their stop, submitted and waited for until every one has started."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tests.e2e.procs import Cluster, Proc
from tests.e2e.test_chaos import COUNTING, SETTINGS, count_file, wait_count
from worldpool.backends.base import Backend
from worldpool.models import TaskSpec
from worldpool.orchestrator.core import Orchestrator


def effect_file(cluster: Cluster) -> Path:
    return cluster.directory / "effects.log"


def ledger_env(cluster: Cluster) -> dict[str, str]:
    """Where the counting handlers write: starts and ends, and effects."""
    return {
        "WP_E2E_COUNT_FILE": str(count_file(cluster)),
        "WP_E2E_EFFECT_FILE": str(effect_file(cluster)),
    }


def counting_worker(
    cluster: Cluster, name: str, *flags: str, env: Mapping[str, str] | None = None
) -> Proc:
    """``worldpool worker --id NAME`` in eu-west-1 with the counting handlers only."""
    return cluster.worker(
        name, "--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin", *flags,
        env=env or ledger_env(cluster),
    )  # fmt: skip


async def start_deaf(
    cluster: Cluster, client: Backend, handler: str, ids: list[str], payload: dict[str, object]
) -> Orchestrator:
    """Submit one task per id; return once each has started (the submitter, to reuse)."""
    submitter = Orchestrator(client, SETTINGS)
    for task_id in ids:
        await submitter.submit(TaskSpec(id=task_id, handler=handler, payload=payload))
    await wait_count(cluster, "start", len(ids))
    return submitter
