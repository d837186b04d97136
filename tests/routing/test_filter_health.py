from __future__ import annotations

from tests.routing.builders import assert_mask_matches_verdicts, ctx, pool, task, worker
from worldpool.models import WorkerStatus
from worldpool.routing.filters.health import HealthFilter


def test_health_passes_only_online_workers_with_fresh_heartbeats() -> None:
    snap = pool(
        worker("fresh"),
        worker("draining", status=WorkerStatus.DRAINING),
        worker("offline", status=WorkerStatus.OFFLINE, heartbeat_age_s=30),
        worker("stale", heartbeat_age_s=7.5),
    )
    f = HealthFilter()
    c = ctx(task(), heartbeat_timeout_s=3.0)
    assert f.mask(c, snap).tolist() == [True, False, False, False]
    assert_mask_matches_verdicts(f, c, snap)
    codes = {code: m.tolist() for code, m in f.failures(c, snap).items()}
    assert codes["draining"] == [False, True, False, False]
    assert codes["offline"] == [False, False, True, False]
    assert codes["stale_heartbeat"] == [False, False, False, True]
    stale = f.verdict(c, snap.workers[3])
    assert stale.code == "stale_heartbeat"
    assert "7.5 s" in stale.reason and "limit 3 s" in stale.reason


def test_a_longer_timeout_accepts_the_slow_heartbeat() -> None:
    snap = pool(worker("slow", heartbeat_age_s=7.5))
    assert HealthFilter().mask(ctx(task(), heartbeat_timeout_s=10), snap).tolist() == [True]
