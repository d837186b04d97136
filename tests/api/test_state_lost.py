"""A backend that lost its state under a running server: /healthz fails, one event says
so (and the metrics count it), the vanished ids are explained."""

from __future__ import annotations

import httpx

from worldpool.backends.base import EpochMark
from worldpool.epoch import StateLostError, explain_missing
from worldpool.errors import NotFoundError
from worldpool.models import EventKind
from worldpool.testing import EmbeddedPool


async def test_a_backend_that_came_back_empty_fails_health_and_says_so(
    client: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    watch = pool.orchestrator.sweeper.epoch
    await watch.check()
    assert watch.lost is None and watch.epoch is not None
    assert (await client.get("/healthz", headers={"Authorization": ""})).status_code == 200
    # Redis restarted without persistence, and another process made the epoch again:
    pool.backend._s.epoch = EpochMark("fresh", 1, True, watch.epoch, 123.0)  # type: ignore[attr-defined]
    await watch.check()  # (or the sweep loop's own check, whichever comes first)
    assert watch.lost is not None and "lost its state" in watch.lost
    health = await client.get("/healthz", headers={"Authorization": ""})
    assert health.status_code == 503 and "state lost" in health.json()["status"]
    explained = await explain_missing(pool.backend, NotFoundError("task", "gone-1"))
    assert isinstance(explained, StateLostError) and "lost its state" in str(explained)


async def test_a_rollback_is_noticed_and_written_as_one_event(pool: EmbeddedPool) -> None:
    watch = pool.orchestrator.sweeper.epoch
    await watch.check()
    await watch.check()
    epoch = watch.epoch
    assert epoch is not None
    pool.backend._s.epoch = EpochMark(epoch, 1)  # type: ignore[attr-defined]  # an older copy
    await watch.check()
    assert watch.lost is not None and "rolled back" in watch.lost
    events = [
        e for e in await pool.backend.read_events() if e.kind is EventKind.DEPLOYMENT_STATE_LOST
    ]
    assert len(events) == 1 and "rolled back" in events[0].message


async def test_without_a_loss_a_missing_id_is_just_missing(pool: EmbeddedPool) -> None:
    await pool.orchestrator.sweeper.epoch.check()
    missing = NotFoundError("task", "typo")
    assert await explain_missing(pool.backend, missing) is missing
