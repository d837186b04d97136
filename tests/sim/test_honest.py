"""The honest simulator: batching, noise, stale views and several deciders, time-of-day
prices, idle fleet cost and the faithful baselines, each hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from tests.sim.conftest import gpu_worker
from worldpool.models import Affinity, AffinityMode, TaskSpec
from worldpool.sim.engine import SimConfig, Simulation
from worldpool.sim.load import batch_jobs_for, interactive_counts, offered_load
from worldpool.sim.policies import make_placer
from worldpool.sim.pools import seed_pool
from worldpool.sim.workload import WorkloadBuilder

ANALYZE = TaskSpec(id="proto-a", handler="analyze", capabilities={"coding"})


def _two(at: float = 0.0) -> WorkloadBuilder:
    b = WorkloadBuilder()
    b.add_task(ANALYZE, at, 10.0, cls="llm")
    b.add_task(ANALYZE, at, 10.0, cls="llm")
    return b


def test_batching_curve_slows_a_request_by_the_batch_it_joins() -> None:
    # Given one 8-slot box and b = 0.04: the first request runs alone (10 s), the second
    # joins a batch of 2 and runs 10 x (1 + 0.04) = 10.4 s
    sim = Simulation(
        [gpu_worker("g1", "tokyo", slots=8)],
        _two().build(),
        make_placer("default"),
        SimConfig(batching=0.04),
    )
    sim.run()
    assert sim.end_t.tolist() == pytest.approx([10.0, 10.4])


def test_noise_is_seeded_and_off_by_default() -> None:
    def ends(noise: float, seed: int) -> list[float]:
        b = WorkloadBuilder()
        for k in range(5):
            b.add_task(ANALYZE, float(k), 10.0, cls="llm")
        cfg = SimConfig(noise=noise, seed=seed)
        sim = Simulation(
            [gpu_worker("g1", "tokyo", slots=8)], b.build(), make_placer("default"), cfg
        )
        sim.run()
        return [float(x) for x in sim.end_t]

    assert ends(0.0, 1) == [10.0, 11.0, 12.0, 13.0, 14.0]
    noisy = ends(0.3, 1)
    assert noisy == ends(0.3, 1)  # deterministic for a seed
    assert noisy != ends(0.3, 2) and noisy != ends(0.0, 1)


def test_two_deciders_on_stale_views_lose_a_reservation_and_route_again() -> None:
    # Given a good box and a poor one (1 slot each) and two tasks at once
    good = gpu_worker("good", "us-east-1", cost=1.0)
    poor = gpu_worker("poor", "sao-paulo", cost=40.0, latency_ms=300.0)
    # With one decider patching its view at once: the second task takes the poor box
    live = Simulation([good, poor], _two().build(), make_placer("default"))
    r = live.run()
    assert live.worker.tolist() == [0, 1] and r.counters.lost_reservations == 0
    assert r.counters.decisions == 2
    # With two deciders on views 100 s stale, the second decider also picks the good box;
    # the backend refuses the reservation (it is full), the decider re-reads it and
    # routes again: the poor box, 300 ms away (0.15 s each way)
    stale = Simulation(
        [good, poor], _two().build(), make_placer("default"), SimConfig(deciders=2, stale_s=100.0)
    )
    r = stale.run()
    assert stale.worker.tolist() == [0, 1]
    assert r.counters.lost_reservations == 1 and r.counters.decisions == 3
    assert stale.end_t.tolist() == pytest.approx([10.0, 10.3])
    assert r.lost == 0 and not r.stuck


def test_time_of_day_price_and_the_idle_fleet() -> None:
    # 00:00 UTC in London (UTC+0 in March) is night: price x0.7. One 10 s task on a
    # $3.60/h slot costs 0.01 x 0.7; the fleet for the hour costs 3.6 x 0.7 (all night)
    b = WorkloadBuilder()
    b.add_task(ANALYZE, 0.0, 10.0, cls="llm")
    cfg = SimConfig(time_of_day=True, horizon_s=3600.0)
    r = Simulation([gpu_worker("g1", "london")], b.build(), make_placer("default"), cfg).run()
    assert r.total_cost_usd == pytest.approx(0.007)
    assert r.fleet_cost_usd == pytest.approx(2.52)
    assert r.idle_cost_usd == pytest.approx(2.52 - 0.007)
    assert r.gpu_utilisation == pytest.approx(10.0 / 3600.0)
    assert r.counters.carbon_kg > 0


def test_hatchet_soft_sticky_falls_back_hard_sticky_waits() -> None:
    sticky = task(affinity=Affinity(key="wf:understand", mode=AffinityMode.SOFT))
    snap = pool(worker("owner", slots=1, running=1), worker("other"))
    c = ctx(sticky, affinity_worker="owner")
    soft = make_placer("label-weight").place(c, snap)
    hard = make_placer("label-weight-hard").place(c, snap)
    assert soft.row == 1 and not soft.waiting_for_affinity
    assert hard.row is None and hard.waiting_for_affinity
    free = pool(worker("other"), worker("owner"))  # the owner has a slot: both take it
    assert make_placer("label-weight").place(ctx(sticky, affinity_worker="owner"), free).row == 1
    assert (
        make_placer("label-weight-hard").place(ctx(sticky, affinity_worker="owner"), free).row == 1
    )


def test_skypilot_stand_in_blocks_a_failed_region() -> None:
    # cheapest first; a region where this task already failed goes last
    snap = pool(
        worker("cheap-a", region="us-east-1", cost=1.0),
        worker("cheap-b", region="us-east-1", cost=1.0),
        worker("dear", region="eu-west-1", cost=2.0),
    )
    placer = make_placer("cheapest-region")
    assert placer.place(ctx(task()), snap).row in (0, 1)
    failed = ctx(task(), avoid_workers=frozenset({"cheap-a"}))
    assert placer.place(failed, snap).row == 2


def test_load_levels_offer_the_target_gpu_share() -> None:
    profiles = seed_pool()
    for target in (0.05, 0.4, 0.7):
        counts = interactive_counts(5000)
        counts["batch_inference"] = batch_jobs_for(profiles, target, 5000)
        assert offered_load(profiles, counts) == pytest.approx(target, abs=0.001)


def test_views_sync_only_while_work_is_left() -> None:
    # the refresh events stop when the last task ends (the run does not spin to its end)
    sim = Simulation(
        [gpu_worker("g1", "tokyo")],
        _two().build(),
        make_placer("default"),
        SimConfig(stale_s=1.0, horizon_s=5.0),
    )
    r = sim.run()
    assert r.sim_s <= 21.0 and np.isnan(sim.end_t).sum() == 0
