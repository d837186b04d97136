"""Placement policies the simulator compares.

``worldpool`` policies run the production :class:`~worldpool.routing.Router` with a
:class:`~worldpool.routing.RoutingPolicy` (the default weights or a variant). Baselines
stand for what peers do; every one of them first asks the *same* router filters which
workers are feasible (capabilities, hardware, region, health, hard affinity, capacity),
so a baseline can be worse but never illegal, and then picks its own way:

=================  ===========================================================
random             uniform among feasible workers
round-robin        next feasible worker after the last one picked (a cursor)
least-loaded       lowest running / slots (ties at random)
label-weight       Hatchet worker affinity: sum of weights of matching labels
                   (kind 2, user's macro-region 1); ties: first in id order; a
                   sticky step uses Hatchet's SOFT sticky (its earlier step's worker
                   when that one has a free slot, else by labels)
label-weight-hard  the same with Hatchet's HARD sticky: a sticky step waits for its
                   earlier step's worker while that worker is online
capability-fifo    Celery queues per capability: the worker idle longest takes it
power-of-two       Sparrow: probe two random feasible workers, take the less loaded
cheapest-region    SkyPilot-style: cheapest per unit of work ($/1k tokens or
                   $/slot-hour) first, then least loaded, ties at random; its
                   failover order: a region where this task already failed goes
                   last (SkyPilot blocks a failed region and tries the next
                   cheapest)
=================  ===========================================================

Names: ``default``, ``weights:load=0.6,cost=0.1`` (a variant; unnamed scorers keep their
default weights), and the baseline names above. A variant may end in ``+reserve=N`` or
``+reserve=2%``: the same policy keeping N slots per worker (or that share of each
worker's slots) for interactive tasks (``RoutingPolicy.interactive_reserve``). Baselines
keep nothing back, whatever worldpool's default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from worldpool import geo
from worldpool.config import parse_weights
from worldpool.errors import ConfigError
from worldpool.routing import PoolSnapshot, Router, RoutingContext, RoutingPolicy
from worldpool.routing.interface import Mask
from worldpool.routing.pool import STATUS_ONLINE
from worldpool.routing.scorers.work import usd_per_unit


@dataclass(slots=True)
class Placement:
    """Where a task goes (``row``), or why it waits."""

    row: int | None
    waiting_for_affinity: bool = False
    reasons: tuple[str, ...] = ()
    suggestion: str | None = None


class Placer(Protocol):
    name: str
    router: Router

    def place(self, ctx: RoutingContext, pool: PoolSnapshot) -> Placement: ...

    def placed(self, row: int, now: float) -> None:
        """Told after every dispatch (cursors, idle clocks)."""
        ...


class WorldpoolPlacer:
    """The real router with a policy: the winner of ``Router.decide``."""

    def __init__(self, name: str, policy: RoutingPolicy) -> None:
        self.name = name
        # Same plugins and weights; only the explanation is shortened (one candidate
        # report instead of 25): placement does not depend on it, speed does.
        self.router = Router(dataclasses.replace(policy, report_candidates_max=1))

    def place(self, ctx: RoutingContext, pool: PoolSnapshot) -> Placement:
        # The dispatcher's hot path (explain=False, as production dispatch calls it): the
        # same feasible rows, scores and winner as the full pass, without a pass over
        # the pool. Only a task that cannot be placed now gets the full explanation.
        d = self.router.decide(ctx, pool, explain=False)
        if d.winner is not None:
            return Placement(pool.row_of(d.winner))
        if not d.waiting_for_affinity:
            d = self.router.decide(ctx, pool)
        return Placement(None, d.waiting_for_affinity, tuple(d.reasons), d.suggestion)

    def placed(self, row: int, now: float) -> None:
        return None


Picker = Callable[["Baseline", RoutingContext, PoolSnapshot, np.ndarray], int]


class Baseline:
    """Feasibility from the router's filters, then ``pick`` among the feasible rows."""

    def __init__(self, name: str, pick: Picker, seed: int, sticky: str = "") -> None:
        self.name = name
        self.sticky = sticky  # "", "soft" or "hard": Hatchet's sticky strategies
        # The peers keep no slots back for interactive work, whatever worldpool's default.
        self.router = Router(RoutingPolicy(interactive_reserve=0, interactive_reserve_share=0.0))
        self.pick = pick
        self.rng = np.random.default_rng(seed)
        self.cursor = -1
        self.last_used: np.ndarray = np.zeros(0)

    def feasible(self, ctx: RoutingContext, pool: PoolSnapshot) -> Mask:
        mask = np.ones(len(pool), dtype=np.bool_)
        for p in self.router.run_filters(ctx, pool):
            mask &= p.mask
        return mask

    def place(self, ctx: RoutingContext, pool: PoolSnapshot) -> Placement:
        mask = self.feasible(ctx, pool)
        rows = np.flatnonzero(mask)
        sticky = self.sticky
        owner = ctx.affinity_worker if sticky and ctx.task.affinity is not None else None
        if owner is not None and owner in pool:
            row = pool.row_of(owner)
            if mask[row]:
                return Placement(row)  # soft and hard sticky: the earlier step's worker
            if sticky == "hard" and pool.status[row] == STATUS_ONLINE:
                return Placement(None, True, (f"hard sticky: waiting for {owner}",))
        if len(rows) == 0:
            d = self.router.decide(ctx, pool)  # only to explain why not
            return Placement(None, False, tuple(d.reasons), d.suggestion)
        if len(self.last_used) != len(pool):
            self.last_used = np.full(len(pool), -np.inf)
        return Placement(int(self.pick(self, ctx, pool, rows)))

    def placed(self, row: int, now: float) -> None:
        self.cursor = row
        self.last_used[row] = now


def _load(pool: PoolSnapshot, rows: np.ndarray) -> np.ndarray:
    out: np.ndarray = pool.running[rows] / pool.max_concurrency[rows]
    return out


def _first_min(pool: PoolSnapshot, rows: np.ndarray, *keys: np.ndarray) -> int:
    """Row with the smallest keys (last key most significant), ties by worker id."""
    order = np.lexsort((pool.id_rank[rows], *keys))
    return int(rows[order[0]])


def _random(b: Baseline, ctx: RoutingContext, pool: PoolSnapshot, rows: np.ndarray) -> int:
    return int(rows[b.rng.integers(len(rows))])


def _round_robin(b: Baseline, ctx: RoutingContext, pool: PoolSnapshot, rows: np.ndarray) -> int:
    after = rows[rows > b.cursor]
    return int(after[0] if len(after) else rows[0])


def _random_min(b: Baseline, rows: np.ndarray, *keys: np.ndarray) -> int:
    """Row with the smallest keys (last key most significant), ties at random (the
    stand-ins for real schedulers must not all herd onto the lowest worker id)."""
    order = np.lexsort((b.rng.random(len(rows)), *keys))
    return int(rows[order[0]])


def _least_loaded(b: Baseline, ctx: RoutingContext, pool: PoolSnapshot, rows: np.ndarray) -> int:
    return _random_min(b, rows, _load(pool, rows))


def _label_weight(b: Baseline, ctx: RoutingContext, pool: PoolSnapshot, rows: np.ndarray) -> int:
    user = geo.try_location(ctx.task.user_location) if ctx.task.user_location else None
    want: list[tuple[str, float]] = []
    if user is not None:
        want.append((f"macro_region={user.macro_region}", 1.0))
    caps = ctx.task.capabilities
    kind = (
        "browser"
        if "browser_operations" in caps
        else ("gpu" if ctx.task.requirements.gpu else "sandbox")
    )
    want.append((f"kind={kind}", 2.0))
    total = np.zeros(len(rows))
    for pair, weight in want:
        total += weight * pool.labels.has_all((pair,))[rows]
    return _first_min(pool, rows, -total)


def _fifo(b: Baseline, ctx: RoutingContext, pool: PoolSnapshot, rows: np.ndarray) -> int:
    return _first_min(pool, rows, b.last_used[rows])


def _two_choices(b: Baseline, ctx: RoutingContext, pool: PoolSnapshot, rows: np.ndarray) -> int:
    probe = rows[b.rng.choice(len(rows), size=min(2, len(rows)), replace=False)]
    return _first_min(pool, np.sort(probe), _load(pool, np.sort(probe)))


def _cheapest(b: Baseline, ctx: RoutingContext, pool: PoolSnapshot, rows: np.ndarray) -> int:
    # SkyPilot's optimizer ranks by cost of the job, not $/h: price per unit of work
    # ($/1k tokens for a model task, $/slot-hour otherwise), then least loaded, then random.
    price, _ = usd_per_unit(ctx, pool, rows)
    blocked = np.zeros(len(rows))
    if ctx.avoid_workers:
        failed = {pool.region_index[pool.row_of(w)] for w in ctx.avoid_workers if w in pool}
        blocked = np.isin(pool.region_index[rows], list(failed)).astype(np.float64)
    return _random_min(b, rows, _load(pool, rows), np.round(price, 9), blocked)


BASELINES: dict[str, Picker] = {
    "random": _random,
    "round-robin": _round_robin,
    "least-loaded": _least_loaded,
    "label-weight": _label_weight,
    "label-weight-hard": _label_weight,
    "capability-fifo": _fifo,
    "power-of-two": _two_choices,
    "cheapest-region": _cheapest,
}
#: Weight variants worth comparing with the default (see docs/simulation.md).
VARIANTS: dict[str, str] = {
    "default": "",
    # The seed's composite weights, by name, whatever the default becomes.
    "seed-default": "",
    "load-heavy": "load=0.6,latency=0.1,cost=0.05",
    "geo-heavy": "geo_proximity=0.6,latency=0.4",
    "cost-heavy": "cost=0.5",
    # Work-aware (issue 17): completion time, cost per unit of work and throughput
    # replace latency, geo proximity and $/h; capability match stays, load mostly goes
    # (completion_time already sees queues). Weights from the seed-pool runs in
    # docs/simulation.md ("Work-aware routing").
    "work-aware": (
        "completion_time=0.3,cost_per_work=0.5,throughput=0.2,load=0.1,"
        "latency=0,geo_proximity=0,cost=0"
    ),
    # Tuned on the honest simulator (one seed, mid and high load): more load weight
    # spreads work before slots run out, a little latency keeps browser round trips short.
    "work-aware-balanced": (
        "completion_time=0.3,cost_per_work=0.5,throughput=0.2,load=0.3,"
        "latency=0.1,geo_proximity=0,cost=0"
    ),
}


def make_placer(name: str, seed: int = 0) -> WorldpoolPlacer | Baseline:
    """A policy by name: a baseline, a variant in :data:`VARIANTS`, or ``weights:a=1,b=2``;
    a variant may end in ``+reserve=N`` (slots per worker kept for interactive tasks) or
    ``+reserve=12.5%`` (a share of each worker's slots): ``work-aware-balanced+reserve=1``.
    """
    if name in BASELINES:
        sticky = {"label-weight": "soft", "label-weight-hard": "hard"}.get(name, "")
        return Baseline(name, BASELINES[name], seed, sticky)
    base, plus, reserve = name.partition(RESERVE_SUFFIX)
    spec = VARIANTS.get(base)
    if spec is None and base.startswith("weights:"):
        spec = base.removeprefix("weights:")
    if spec is None:
        known = ", ".join([*VARIANTS, *BASELINES])
        raise ConfigError(
            f"unknown policy {name!r}: use one of {known}, or 'weights:load=0.5,cost=0.2' "
            "for a weight variant of the default policy (either may end in '+reserve=1' "
            "or '+reserve=12.5%')"
        )
    policy = RoutingPolicy() if not spec else RoutingPolicy(weights=parse_weights(spec))
    if base == "seed-default":  # the seed kept no slots back
        policy = dataclasses.replace(policy, interactive_reserve=0, interactive_reserve_share=0.0)
    if plus:
        count, share = _reserve(name, reserve)
        policy = dataclasses.replace(
            policy, interactive_reserve=count, interactive_reserve_share=share
        )
    return WorldpoolPlacer(name, policy)


RESERVE_SUFFIX = "+reserve="


def _reserve(name: str, text: str) -> tuple[int, float]:
    """(slots, share) kept for interactive tasks, from ``1`` or ``12.5%``."""
    try:
        if text.endswith("%"):
            return 0, float(text[:-1]) / 100
        return int(text), 0.0
    except ValueError:
        raise ConfigError(
            f"policy {name!r}: the reserve {text!r} must be a whole number of slots "
            "('+reserve=1') or a share of slots ('+reserve=12.5%')"
        ) from None
