"""The plugin example of docs/routing.md, run as a test."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool.models import Verdict, Worker
from worldpool.routing import (
    PoolSnapshot,
    Router,
    RoutingContext,
    RoutingPolicy,
    register_filter,
    register_scorer,
)
from worldpool.routing.interface import Mask, Rows, Scores, excluded, ok
from worldpool.routing.registry import FILTERS, SCORERS


class GreenEnergy:
    """Prefer regions on a low-carbon grid."""

    name = "green_energy"
    CLEAN = frozenset({"eu-north-1", "europe-north1", "ca-central-1"})

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        clean = np.array([r in self.CLEAN for r in pool.regions])
        out: Scores = clean[pool.region_index[rows]].astype(float)
        return out


class NoFridays:
    name = "no_fridays"

    def mask(self, ctx: RoutingContext, pool: PoolSnapshot) -> Mask:
        return np.array([w.profile.labels.get("maintenance") != "friday" for w in pool.workers])

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        if worker.profile.labels.get("maintenance") == "friday":
            return excluded(self.name, "maintenance", "is in its Friday maintenance window")
        return ok(self.name)


@pytest.fixture
def plugins() -> Iterator[None]:
    register_scorer("green_energy", lambda policy: GreenEnergy())
    register_filter("no_fridays", lambda policy: NoFridays())
    yield
    SCORERS.unregister("green_energy")
    FILTERS.unregister("no_fridays")


def test_custom_filter_and_scorer_take_part_in_decisions(plugins: None) -> None:
    defaults = RoutingPolicy()
    policy = RoutingPolicy(
        filters=(*defaults.filters, "no_fridays"),
        scorers=(*defaults.scorers, "green_energy"),
        weights={**defaults.weights, "green_energy": 0.3},
    )
    snap = pool(
        worker("fossil", region="us-east-1", cost=0.0),
        worker("clean", region="eu-north-1", cost=0.5),
        worker("friday", region="eu-north-1", labels={"maintenance": "friday"}),
    )
    d = Router(policy).decide(ctx(task()), snap)
    assert d.winner == "clean"
    assert d.candidates[0].scores["green_energy"] == 1.0
    assert d.excluded_by == {"no_fridays:excluded": 1}
    assert d.candidates[-1].verdicts[0].reason == "is in its Friday maintenance window"


class NoFridaysWithHooks:
    """The optional-hooks version of the filter in docs/routing.md."""

    name = "no_fridays"
    remedy = "wait for the maintenance window to end"

    def failures(self, ctx: RoutingContext, pool: PoolSnapshot) -> dict[str, Mask]:
        friday = [w.profile.labels.get("maintenance") == "friday" for w in pool.workers]
        return {"maintenance": np.array(friday, dtype=bool)}

    def mask(self, ctx: RoutingContext, pool: PoolSnapshot) -> Mask:
        return ~self.failures(ctx, pool)["maintenance"]

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        return NoFridays().verdict(ctx, worker)

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        return "is outside its maintenance window"


def test_optional_hooks_name_codes_headline_and_remedy() -> None:
    register_filter("no_fridays", lambda policy: NoFridaysWithHooks())
    try:
        policy = RoutingPolicy(filters=(*RoutingPolicy().filters, "no_fridays"))
        router = Router(policy)
        friday = worker("friday", labels={"maintenance": "friday"})
        d = router.decide(ctx(task()), pool(friday))
        assert d.winner is None
        assert d.excluded_by == {"no_fridays:maintenance": 1}
        assert d.reasons[0] == "no online worker is outside its maintenance window"
        assert d.suggestion == (
            "wait for the maintenance window to end: friday passes every other filter "
            "but is in its Friday maintenance window"
        )
    finally:
        FILTERS.unregister("no_fridays")
