"""Property tests of the router.

1. Hard filters: on random pools and tasks, the winner passes every filter's verdict,
   every listed feasible candidate passes every verdict, and every excluded worker fails
   at least one; ``excluded_by`` counts each excluded worker exactly once.
2. Weights (the documented property): for any pool and weights, raising the weight of
   one scorer S never moves a worker that S scores highest to a worse rank (rank 1 =
   best). Raising S's weight by d adds ``d * s_S`` to every numerator of
   ``Σ w·s / Σ w``; a top-S worker gains at least as much as anyone, so nobody passes it.
   Tested with fake scorers on a 1/8 grid and integer weights, so float rounding cannot
   create or break ties.
3. Avoided workers rank after every other feasible worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.routing.builders import ctx, pool, task, worker
from tests.routing.fakes import FixedScores
from worldpool.models import TaskSpec, Worker, WorkerStatus
from worldpool.routing import Router, RoutingPolicy, register_scorer
from worldpool.routing.registry import SCORERS

REGIONS = ["us-east-1", "eu-west-1", "europe-west1", "ap-northeast-1", "eastasia", "on-prem"]
CAPS = ["coding", "planning", "testing", "browser_operations", "x-render"]
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def workers(draw: st.DrawFn, wid: str) -> Worker:
    gpus = draw(st.lists(st.sampled_from([("A100-40GB", 40.0), ("H100", 80.0)]), max_size=2))
    slots = draw(st.integers(1, 4))
    return worker(
        wid,
        region=draw(st.sampled_from(REGIONS)),
        caps=tuple(draw(st.sets(st.sampled_from(CAPS), max_size=4))),
        handlers=tuple(draw(st.sets(st.sampled_from(["run", "other"]), min_size=1))),
        gpus=tuple(gpus),
        memory_gb=draw(st.sampled_from([4.0, 16.0, 64.0])),
        cpus=draw(st.sampled_from([2, 8, 32])),
        tools=tuple(draw(st.sets(st.sampled_from(["chromium", "git"])))),
        cost=draw(st.floats(0, 20)),
        slots=slots,
        running=draw(st.integers(0, slots)),
        status=draw(st.sampled_from(list(WorkerStatus))),
        heartbeat_age_s=draw(st.sampled_from([0.0, 1.0, 10.0])),
        latency_ms=draw(st.none() | st.floats(0, 800)),
        labels=draw(st.sampled_from([{}, {"tier": "gold"}])),
    )


@st.composite
def pools(draw: st.DrawFn) -> list[Worker]:
    n = draw(st.integers(0, 12))
    return [draw(workers(f"w{i}")) for i in range(n)]


@st.composite
def tasks(draw: st.DrawFn) -> TaskSpec:
    requirements = {
        "gpu": draw(st.booleans()),
        "min_vram_gb": draw(st.sampled_from([0.0, 40.0, 80.0])),
        "min_memory_gb": draw(st.sampled_from([0.0, 16.0])),
        "tools": draw(st.sets(st.sampled_from(["chromium", "git"]), max_size=1)),
        "regions": draw(st.sampled_from([[], ["eu-*"], ["asia-pacific", "us-*"]])),
        "exclude_regions": draw(st.sampled_from([[], ["on-prem"]])),
        "labels": draw(st.sampled_from([{}, {"tier": "gold"}])),
    }
    return task(
        capabilities=sorted(draw(st.sets(st.sampled_from(CAPS), max_size=2))),
        requirements=requirements,
        interactive=draw(st.booleans()),
        user_location=draw(st.sampled_from([None, "london", "tokyo"])),
        heavy=draw(st.booleans()),
    )


@PROFILE
@given(members=pools(), spec=tasks(), max_report=st.integers(1, 20))
def test_a_hard_filter_is_never_violated(
    members: list[Worker], spec: TaskSpec, max_report: int
) -> None:
    router = Router(RoutingPolicy(report_candidates_max=max_report))
    c = ctx(spec)
    d = router.decide(c, pool(*members))
    by_id = {w.id: w for w in members}

    def passes_all(wid: str) -> bool:
        return all(f.verdict(c, by_id[wid]).ok for f in router.filters)

    feasible = {w.id for w in members if passes_all(w.id)}
    assert d.feasible_count == len(feasible)
    assert sum(d.excluded_by.values()) == len(members) - len(feasible)
    if d.winner is not None:
        assert d.winner in feasible
    else:
        assert not feasible or d.waiting_for_affinity
        assert d.reasons
    for cand in d.candidates:
        assert cand.feasible == (cand.worker_id in feasible)
        if not cand.feasible:
            assert any(not v.ok for v in cand.verdicts)
            assert not cand.verdicts[0].ok  # failing verdicts first
        assert 0.0 <= cand.total <= 1.0
        assert all(0.0 <= s <= 1.0 for s in cand.scores.values())


GRID = st.integers(0, 8).map(lambda k: k / 8)


@pytest.fixture(scope="module")
def grid_scorers() -> Iterator[None]:
    names = ("s1", "s2", "s3")
    for name in names:
        # The scores live in the task payload, so each example can vary them.
        register_scorer(name, lambda p, name=name: _PayloadScores(name))
    yield
    for name in names:
        SCORERS.unregister(name)


class _PayloadScores(FixedScores):
    def __init__(self, name: str) -> None:
        super().__init__(name, {})

    def score(self, c, snapshot, rows):  # type: ignore[no-untyped-def]
        self.scores = c.task.payload[self.name]
        return super().score(c, snapshot, rows)


@PROFILE
@given(
    n=st.integers(2, 10),
    data=st.data(),
    weights=st.fixed_dictionaries({f"s{i}": st.integers(0, 5) for i in (1, 2, 3)}),
    bump=st.integers(1, 10),
    which=st.sampled_from(["s1", "s2", "s3"]),
)
def test_raising_a_weight_never_demotes_that_scorers_favourite(
    grid_scorers: None, n: int, data: st.DataObject, weights: dict[str, int], bump: int, which: str
) -> None:
    ids = [f"w{i}" for i in range(n)]
    payload = {s: {w: data.draw(GRID) for w in ids} for s in ("s1", "s2", "s3")}
    if sum(weights.values()) == 0:
        weights = {**weights, "s1": 1}
    spec = task(payload=payload)
    members = pool(*(worker(w) for w in ids))
    # near_tie=0: herding protection counts totals within 0.02 as tied and orders them by
    # a per-task hash, on purpose; the property is about the exact weighted ranking.
    policy = RoutingPolicy(
        filters=(),
        scorers=("s1", "s2", "s3"),
        weights={k: float(v) for k, v in weights.items()},
        near_tie=0.0,
    )
    before = Router(policy).decide(ctx(spec), members)
    after = Router(policy.with_weights(**{which: float(weights[which] + bump)})).decide(
        ctx(spec), members
    )
    rank_before = [c.worker_id for c in before.candidates]
    rank_after = [c.worker_id for c in after.candidates]
    top = max(payload[which].values())
    for wid in ids:
        if payload[which][wid] == top:
            assert rank_after.index(wid) <= rank_before.index(wid)


@settings(PROFILE, max_examples=30)
@given(members=pools(), spec=tasks(), avoid=st.sets(st.sampled_from([f"w{i}" for i in range(12)])))
def test_avoided_workers_rank_last(members: list[Worker], spec: TaskSpec, avoid: set[str]) -> None:
    d = Router(RoutingPolicy(report_candidates_max=50)).decide(
        ctx(spec, avoid_workers=frozenset(avoid)), pool(*members)
    )
    flags = [c.worker_id in avoid for c in d.candidates if c.feasible]
    assert flags == sorted(flags)
