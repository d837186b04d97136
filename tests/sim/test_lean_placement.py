"""The simulator routes on the dispatcher's lean path (``explain=False``): every
placement of a seeded run is the one the fully explained decision gives, queues,
failures, crashes and stale views included."""

from __future__ import annotations

from collections import Counter

import pytest

from worldpool.routing import PoolSnapshot, RoutingContext
from worldpool.sim.engine import SimConfig, Simulation
from worldpool.sim.policies import Placement, make_placer
from worldpool.sim.pools import world_pool
from worldpool.sim.truth import HONEST
from worldpool.sim.workload import world_workload


@pytest.mark.parametrize(
    ("policy", "honest"), [("default", False), ("work-aware", False), ("default", True)]
)
def test_every_placement_of_a_seeded_run_is_the_explained_decision(
    policy: str, honest: bool
) -> None:
    # Given an overloaded seeded run (30 workers, 800 tasks in 200 s) with failed
    # attempts and crashes, and (honest) four deciders on stale views
    pool = world_pool(30, seed=5)
    wl = world_workload(800, seed=5, day_s=200)
    failures = {"fail_p": 0.05, "crash_per_worker_day": 20}
    cfg = SimConfig(seed=5, horizon_s=200, **({**HONEST, **failures} if honest else failures))
    placer = make_placer(policy, 5)
    lean = placer.place
    seen: Counter[str] = Counter()

    def checked(ctx: RoutingContext, snapshot: PoolSnapshot) -> Placement:
        got = lean(ctx, snapshot)
        full = placer.router.decide(ctx, snapshot)  # every filter over every worker
        assert got.row == (snapshot.row_of(full.winner) if full.winner else None)
        assert got.waiting_for_affinity == full.waiting_for_affinity
        if got.row is None:
            assert got.reasons == tuple(full.reasons)
            assert got.suggestion == full.suggestion
        seen["placed" if got.row is not None else "held"] += 1
        return got

    placer.place = checked  # type: ignore[method-assign]
    # When it runs, then every placement matched, both outcomes were exercised and
    # nothing was lost
    result = Simulation(pool, wl, placer, cfg).run()
    assert seen["placed"] >= len(wl) and seen["held"] > 0
    assert result.counters.crashes > 0 and result.counters.retries > 0
    assert result.lost == 0
