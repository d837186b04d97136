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

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from worldpool.errors import ConfigError
from worldpool.routing.filters.affinity import AffinityFilter
from worldpool.routing.filters.capabilities import CapabilitiesFilter
from worldpool.routing.filters.capacity import CapacityFilter
from worldpool.routing.filters.hardware import HardwareFilter
from worldpool.routing.filters.health import HealthFilter
from worldpool.routing.filters.region import RegionFilter
from worldpool.routing.interface import Filter, Scorer
from worldpool.routing.scorers.capability_match import CapabilityMatchScorer
from worldpool.routing.scorers.cost import CostScorer
from worldpool.routing.scorers.data_locality import DataLocalityScorer
from worldpool.routing.scorers.follow_the_sun import FollowTheSunScorer
from worldpool.routing.scorers.geo_proximity import GeoProximityScorer
from worldpool.routing.scorers.latency import LatencyScorer
from worldpool.routing.scorers.load import LoadScorer
from worldpool.routing.scorers.soft_affinity import SoftAffinityScorer

if TYPE_CHECKING:
    from worldpool.routing.policy import RoutingPolicy

P = TypeVar("P", Filter, Scorer)


class Registry(Generic[P]):
    """Plugins of one kind ("filter" or "scorer") by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[[RoutingPolicy], P]] = {}

    def register(
        self, name: str, factory: Callable[[RoutingPolicy], P], *, replace: bool = False
    ) -> None:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(
                f"{self.kind} name {name!r} must be letters, digits, '_' or '-' (e.g. 'gpu_heat')"
            )
        if name in self._factories and not replace:
            raise ConfigError(
                f"a {self.kind} named {name!r} is already registered; pick another name "
                "or pass replace=True to override it on purpose"
            )
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        if self._factories.pop(name, None) is None:
            raise ConfigError(f"no {self.kind} named {name!r} is registered")

    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def check(self, name: str) -> None:
        """Raise ConfigError naming the known plugins if ``name`` is not registered."""
        if name in self._factories:
            return
        close = difflib.get_close_matches(name, list(self._factories), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: "
            f"{', '.join(sorted(self._factories))} (register your own with "
            f"register_{self.kind}())"
        )

    def create(self, name: str, policy: RoutingPolicy) -> P:
        self.check(name)
        plugin = self._factories[name](policy)
        if getattr(plugin, "name", None) != name:
            raise ConfigError(
                f"the {self.kind} factory registered as {name!r} built a plugin named "
                f"{getattr(plugin, 'name', None)!r}; the plugin's name must equal its "
                "registered name"
            )
        return plugin


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
register_filter("capacity", lambda policy: CapacityFilter())

register_scorer("capability_match", lambda policy: CapabilityMatchScorer())
register_scorer("load", lambda policy: LoadScorer())
register_scorer("latency", lambda policy: LatencyScorer(policy.latency_scale_ms))
register_scorer(
    "cost", lambda policy: CostScorer(policy.cost_scale_usd, normalize=policy.cost_normalize)
)
register_scorer("geo_proximity", lambda policy: GeoProximityScorer())
register_scorer("follow_the_sun", lambda policy: FollowTheSunScorer())
register_scorer("soft_affinity", lambda policy: SoftAffinityScorer())
register_scorer("data_locality", lambda policy: DataLocalityScorer())

BUILTIN_FILTERS: tuple[str, ...] = FILTERS.names()
BUILTIN_SCORERS: tuple[str, ...] = SCORERS.names()
