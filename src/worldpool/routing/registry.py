"""Name → factory registries for routing plugins (filters and scorers).

A factory takes the :class:`~worldpool.routing.policy.RoutingPolicy` (for settings such as
``latency_scale_ms``) and returns a plugin whose ``name`` is the registered name.
Registering a name twice is an error unless ``replace=True`` — a typo must not silently
shadow a built-in.

    from worldpool.routing import register_scorer

    class GreenEnergy:
        name = "green_energy"
        def score(self, ctx, pool, rows): ...

    register_scorer("green_energy", lambda policy: GreenEnergy())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from worldpool.plugins import NamedRegistry
from worldpool.routing.filters.affinity import AffinityFilter
from worldpool.routing.filters.capabilities import CapabilitiesFilter
from worldpool.routing.filters.capacity import CapacityFilter
from worldpool.routing.filters.hardware import HardwareFilter
from worldpool.routing.filters.health import HealthFilter
from worldpool.routing.filters.region import RegionFilter
from worldpool.routing.interface import Filter, Scorer
from worldpool.routing.scorers.capability_match import CapabilityMatchScorer
from worldpool.routing.scorers.completion_time import CompletionTimeScorer
from worldpool.routing.scorers.cost import CostScorer
from worldpool.routing.scorers.cost_per_work import CostPerWorkScorer
from worldpool.routing.scorers.data_locality import DataLocalityScorer
from worldpool.routing.scorers.follow_the_sun import FollowTheSunScorer
from worldpool.routing.scorers.geo_proximity import GeoProximityScorer
from worldpool.routing.scorers.latency import LatencyScorer
from worldpool.routing.scorers.load import LoadScorer
from worldpool.routing.scorers.soft_affinity import SoftAffinityScorer
from worldpool.routing.scorers.throughput import ThroughputScorer

if TYPE_CHECKING:
    from worldpool.routing.policy import RoutingPolicy

P = TypeVar("P", Filter, Scorer)


class Registry(NamedRegistry["RoutingPolicy", P]):
    """Plugins of one kind ("filter" or "scorer") by name; factories take the policy."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind, noun="plugin", register_with=f"register_{kind}", example="gpu_heat")


FILTERS: Registry[Filter] = Registry("filter")
SCORERS: Registry[Scorer] = Registry("scorer")


def register_filter(
    name: str, factory: Callable[[RoutingPolicy], Filter], *, replace: bool = False
) -> None:
    """Make a filter available to :class:`RoutingPolicy` under ``name``."""
    FILTERS.register(name, factory, replace=replace)


def register_scorer(
    name: str, factory: Callable[[RoutingPolicy], Scorer], *, replace: bool = False
) -> None:
    """Make a scorer available to :class:`RoutingPolicy` under ``name``."""
    SCORERS.register(name, factory, replace=replace)


# Built-ins, in the order the default policy applies them (cheap and selective first).
register_filter("health", lambda policy: HealthFilter())
register_filter("capabilities", lambda policy: CapabilitiesFilter())
register_filter("hardware", lambda policy: HardwareFilter())
register_filter("region", lambda policy: RegionFilter())
register_filter("affinity", lambda policy: AffinityFilter())
register_filter(
    "capacity",
    lambda policy: CapacityFilter(policy.interactive_reserve, policy.interactive_reserve_share),
)

register_scorer("capability_match", lambda policy: CapabilityMatchScorer())
register_scorer("load", lambda policy: LoadScorer())
register_scorer("latency", lambda policy: LatencyScorer(policy.latency_scale_ms))
register_scorer(
    "cost", lambda policy: CostScorer(policy.cost_scale_usd, normalize=policy.cost_normalize)
)
register_scorer(
    "geo_proximity", lambda policy: GeoProximityScorer(defer=_distance_counted_elsewhere(policy))
)
register_scorer("follow_the_sun", lambda policy: FollowTheSunScorer())
register_scorer("soft_affinity", lambda policy: SoftAffinityScorer())
register_scorer("data_locality", lambda policy: DataLocalityScorer())


def _distance_counted_elsewhere(policy: RoutingPolicy) -> bool:
    """Whether geo_proximity would count a distance another scorer already counts."""
    others = ("latency", "completion_time")
    return policy.count_distance_once and any(
        n in policy.scorers and policy.weight(n) > 0 for n in others
    )


BUILTIN_FILTERS: tuple[str, ...] = FILTERS.names()
BUILTIN_SCORERS: tuple[str, ...] = SCORERS.names()

# Work-aware scorers (docs/routing.md): registered after the built-in list is taken, so
# they are opt-in by name (``RoutingPolicy(scorers=(..., "completion_time"), ...)``).
register_scorer("throughput", lambda policy: ThroughputScorer())
register_scorer("cost_per_work", lambda policy: CostPerWorkScorer())
register_scorer("completion_time", lambda policy: CompletionTimeScorer())
WORK_SCORERS: tuple[str, ...] = ("throughput", "cost_per_work", "completion_time")
