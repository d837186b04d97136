"""Which plugins run, and how much each scorer counts.

The default policy runs every built-in filter and scorer with the seed's weights
(:data:`worldpool.config.DEFAULT_WEIGHTS`: capability match 0.4, load 0.3, latency 0.2,
cost 0.1, plus the optional scorers, which only count when they apply to a task).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

from worldpool.config import (
    DEFAULT_INTERACTIVE_RESERVE,
    DEFAULT_INTERACTIVE_RESERVE_SHARE,
    DEFAULT_WEIGHTS,
    MAX_INTERACTIVE_RESERVE,
    Settings,
    check_weights,
)
from worldpool.errors import ConfigError
from worldpool.routing.registry import BUILTIN_FILTERS, BUILTIN_SCORERS, FILTERS, SCORERS

DEFAULT_LATENCY_SCALE_MS = 500.0
DEFAULT_COST_SCALE_USD = 10.0
DEFAULT_REPORT_CANDIDATES_MAX = 25
DEFAULT_NEAR_TIE = 0.02  # herding protection, see RoutingPolicy.near_tie
COST_NORMALIZE = ("scale", "feasible")


@dataclass(frozen=True)
class RoutingPolicy:
    """Plugin lists, weights and scales. Validated on construction (ConfigError)."""

    filters: tuple[str, ...] = BUILTIN_FILTERS
    scorers: tuple[str, ...] = BUILTIN_SCORERS
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    latency_scale_ms: float = DEFAULT_LATENCY_SCALE_MS
    cost_scale_usd: float = DEFAULT_COST_SCALE_USD
    report_candidates_max: int = DEFAULT_REPORT_CANDIDATES_MAX
    #: "scale": cost scores ``1 - $/h / cost_scale_usd`` (the seed's); "feasible": the
    #: cheapest feasible worker scores 1, the dearest 0 (for pools of $10+/h GPU boxes).
    cost_normalize: str = "scale"
    #: Herding protection: rows whose total is within this of the best count as tied,
    #: and ties go by a per-task hash instead of worker id (0 turns it off).
    near_tie: float = DEFAULT_NEAR_TIE
    #: geo_proximity steps aside when latency or completion_time already counts the
    #: user's distance (False: the seed's double count, distance weighted 0.4).
    count_distance_once: bool = True
    #: Interactive headroom: a task that is not interactive may not take a worker's last
    #: ``interactive_reserve`` free slots; interactive tasks may. At most ``slots - 1``
    #: per worker, so every worker admits non-interactive work when idle (a 1-slot worker
    #: keeps nothing back). 0 turns it off.
    interactive_reserve: int = DEFAULT_INTERACTIVE_RESERVE
    #: The same as a share of each worker's slots, rounded down (0.125: 1 of 8, 4 of 32);
    #: the larger of the two counts applies, still at most ``slots - 1``.
    interactive_reserve_share: float = DEFAULT_INTERACTIVE_RESERVE_SHARE

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(self.filters))
        scorers = tuple(self.scorers)
        if scorers == BUILTIN_SCORERS:
            # Opt-in scorers (throughput, cost_per_work, completion_time, plugins) join
            # the default list when the weights name them: weights="completion_time=0.4".
            extra = [n for n, w in self.weights.items() if w > 0 and n in SCORERS]
            scorers += tuple(n for n in extra if n not in scorers)
        object.__setattr__(self, "scorers", scorers)
        for name in self.filters:
            FILTERS.check(name)
        for name in self.scorers:
            SCORERS.check(name)
        for kind, names in (("filter", self.filters), ("scorer", self.scorers)):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ConfigError(f"{kind} {', '.join(dupes)} listed twice in the policy")
        self._check_weights()
        for label, value in (
            ("latency_scale_ms", self.latency_scale_ms),
            ("cost_scale_usd", self.cost_scale_usd),
        ):
            if not value > 0 or value == float("inf"):
                raise ConfigError(f"{label} is {value}: it must be a positive number")
        if self.cost_normalize not in COST_NORMALIZE:
            raise ConfigError(
                f"cost_normalize is {self.cost_normalize!r}: use 'scale' (1 - $/h / "
                "cost_scale_usd) or 'feasible' (cheapest feasible worker 1, dearest 0)"
            )
        if not 0 <= self.near_tie < 1:
            raise ConfigError(f"near_tie is {self.near_tie}: use a score gap in [0, 1), e.g. 0.02")
        self._check_reserve()
        if self.report_candidates_max < 1:
            raise ConfigError(
                f"report_candidates_max is {self.report_candidates_max}: it must be >= 1"
            )

    def _check_reserve(self) -> None:
        n = self.interactive_reserve
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_INTERACTIVE_RESERVE:
            raise ConfigError(
                f"interactive_reserve is {n!r}: use a whole number of slots per worker in "
                f"[0, {MAX_INTERACTIVE_RESERVE}], e.g. 1 (0 turns it off)"
            )
        share = self.interactive_reserve_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise ConfigError(
                f"interactive_reserve_share is {share!r}: use a share of each worker's slots "
                "in [0, 1), e.g. 0.125 (1 of 8 slots; 0 turns it off)"
            )

    @property
    def reserves_slots(self) -> bool:
        """Whether some slots are kept for interactive tasks."""
        return self.interactive_reserve > 0 or self.interactive_reserve_share > 0

    def _check_weights(self) -> None:
        weights = check_weights(self.weights)
        for name in weights:
            if name not in SCORERS:
                close = difflib.get_close_matches(name, SCORERS.names(), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"weight for unknown scorer {name!r}.{hint} "
                    f"Known scorers: {', '.join(sorted(SCORERS.names()))}"
                )
        missing = [n for n in self.scorers if n not in weights]
        if missing:
            raise ConfigError(
                f"scorer {', '.join(missing)} has no weight: add it to weights, "
                f"e.g. weights={{{missing[0]!r}: 0.2}}"
            )
        if sum(weights[n] for n in self.scorers) <= 0:
            raise ConfigError(
                "the weights of the policy's scorers sum to 0: "
                "give at least one listed scorer a positive weight"
            )
        object.__setattr__(self, "weights", weights)

    def weight(self, scorer: str) -> float:
        return float(self.weights.get(scorer, 0.0))

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingPolicy:
        """The default plugins with the weights, report cap and interactive reserve of
        ``settings``."""
        return cls(
            weights=dict(settings.weights),
            report_candidates_max=settings.report_candidates_max,
            interactive_reserve=settings.interactive_reserve,
            interactive_reserve_share=settings.interactive_reserve_share,
        )

    def with_weights(self, **weights: float) -> RoutingPolicy:
        """A copy with some weights changed, e.g. ``policy.with_weights(cost=0.5)``."""
        return dataclasses.replace(self, weights={**self.weights, **weights})
