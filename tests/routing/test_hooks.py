"""Optional extension points: declared, defaulted, and looked up once per router."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from tests.routing.fakes import FixedScores, Raw, RejectIds
from worldpool.models import Verdict, Worker
from worldpool.routing import PoolSnapshot, Router, RoutingContext, RoutingPolicy
from worldpool.routing.hooks import FilterHooks, ScorerHooks
from worldpool.routing.interface import (
    FilterCachedVerdict,
    FilterCheck,
    FilterDescribe,
    FilterFailures,
    FilterRemedy,
    FilterTransient,
    Mask,
    ScorerBounded,
    excluded,
    ok,
)
from worldpool.routing.registry import FILTERS, SCORERS, register_filter, register_scorer


class OddRows:
    """A third-party filter with failures() (two codes) and a remedy, but no check()."""

    name = "odd"
    remedy = "use an even worker"

    def failures(self, ctx: RoutingContext, pool: PoolSnapshot) -> dict[str, Mask]:
        rows = np.arange(len(pool))
        return {"odd": rows % 2 == 1, "last": rows == len(pool) - 1}

    def mask(self, ctx: RoutingContext, pool: PoolSnapshot) -> Mask:
        raise AssertionError("failures() is used instead")

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        return excluded(self.name, "odd", "is odd") if worker.id in "bde" else ok(self.name)


class CountingRemedy(RejectIds):
    """Counts how often the engine reads an optional member."""

    reads = 0

    @property
    def remedy(self) -> str:
        CountingRemedy.reads += 1
        return "stop rejecting"


@pytest.fixture
def odd() -> Iterator[None]:
    register_filter("odd", lambda p: OddRows())
    yield
    FILTERS.unregister("odd")


def test_builtins_implement_every_filter_extension_point() -> None:
    for plugin in Router().filters:
        for point in (FilterCheck, FilterFailures, FilterCachedVerdict, FilterDescribe):
            assert isinstance(plugin, point), (plugin.name, point.__name__)
        assert isinstance(plugin, FilterRemedy) and isinstance(plugin, FilterTransient)
    bounded = {h.name for h in Router().scorer_hooks if h.bounded}
    assert bounded == {s.name for s, _ in Router().scorers if isinstance(s, ScorerBounded)}
    assert "load" in bounded and "data_locality" not in bounded  # the latter is clipped


def test_a_filter_with_only_mask_and_verdict_gets_the_defaults() -> None:
    hooks = FilterHooks.of(RejectIds("reject", {"b"}))
    snap = pool(worker("a"), worker("b"))
    c = ctx(task())
    failures, mask = hooks.check(c, snap)
    assert mask.tolist() == [True, False] and failures["excluded"].tolist() == [False, True]
    assert hooks.verdict_at(c, snap, 1).reason == "b is on the reject list"
    assert hooks.describe(c, {"excluded"}) == "passes reject"
    assert (hooks.remedy, hooks.transient) == ("relax reject", False)


def test_a_scorer_without_bounded_is_clipped() -> None:
    hooks = ScorerHooks.of(FixedScores("fav", {}), 0.5)
    assert (hooks.name, hooks.weight, hooks.bounded) == ("fav", 0.5, False)


def test_failures_alone_give_per_code_counts_and_the_mask(odd: None) -> None:
    policy = RoutingPolicy(filters=("odd",), scorers=("load",), weights={"load": 1.0})
    router = Router(dataclasses.replace(policy, near_tie=0.0))  # a and c tie: by id
    snap = pool(*(worker(w) for w in "abcde"))
    d = router.decide(ctx(task()), snap)
    # b and d are odd rows, e is the last row; each is counted under its first code
    assert d.excluded_by == {"odd:odd": 2, "odd:last": 1}
    assert d.winner == "a" and d.feasible_count == 2


def test_remedy_names_the_fix_and_is_read_once_when_the_router_is_built() -> None:
    register_filter("counting", lambda p: CountingRemedy("counting", {"a", "b"}))
    register_scorer("raw", lambda p: Raw("raw", lambda rows: np.ones(len(rows))))
    try:
        CountingRemedy.reads = 0
        policy = RoutingPolicy(filters=("counting",), scorers=("raw",), weights={"raw": 1.0})
        router = Router(policy)
        reads_at_build = CountingRemedy.reads
        assert reads_at_build > 0
        snap = pool(worker("a"), worker("b"))
        for _ in range(3):
            d = router.decide(ctx(task()), snap)
        assert d.suggestion is not None and d.suggestion.startswith("stop rejecting: a passes")
        assert CountingRemedy.reads == reads_at_build
    finally:
        FILTERS.unregister("counting")
        SCORERS.unregister("raw")
