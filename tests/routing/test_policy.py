from __future__ import annotations

import pytest

from worldpool.config import DEFAULT_WEIGHTS, Settings
from worldpool.errors import ConfigError
from worldpool.routing import RoutingPolicy


def test_defaults_are_the_seed_weights() -> None:
    policy = RoutingPolicy()
    assert dict(policy.weights) == DEFAULT_WEIGHTS
    assert (policy.weight("capability_match"), policy.weight("load")) == (0.4, 0.3)
    assert (policy.weight("latency"), policy.weight("cost")) == (0.2, 0.1)
    assert policy.latency_scale_ms == 500 and policy.cost_scale_usd == 10


def test_from_settings_and_with_weights() -> None:
    settings = Settings(weights={**DEFAULT_WEIGHTS, "cost": 0.9}, report_candidates_max=3)
    policy = RoutingPolicy.from_settings(settings)
    assert policy.weight("cost") == 0.9 and policy.report_candidates_max == 3
    changed = policy.with_weights(load=0.0, latency=1.5)
    assert changed.weight("load") == 0.0 and changed.weight("latency") == 1.5
    assert policy.weight("load") == 0.3  # the original is unchanged


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": ("health", "capabilties")}, "Did you mean 'capabilities'"),
        ({"scorers": ("load", "nope")}, "unknown scorer 'nope'"),
        ({"weights": {**DEFAULT_WEIGHTS, "lattency": 1.0}}, "Did you mean 'latency'"),
        ({"weights": {"load": -1.0}}, "finite and >= 0"),
        ({"weights": {k: 0.0 for k in DEFAULT_WEIGHTS}}, "sum to 0"),
        ({"scorers": ("load",), "weights": {"load": 0.0, "cost": 1.0}}, "sum to 0"),
        ({"scorers": ("load", "cost"), "weights": {"load": 1.0}}, "has no weight"),
        ({"filters": ("health", "health")}, "listed twice"),
        ({"latency_scale_ms": 0}, "latency_scale_ms"),
        ({"cost_scale_usd": float("nan")}, "cost_scale_usd"),
        ({"report_candidates_max": 0}, "report_candidates_max"),
    ],
)
def test_bad_policies_are_rejected_with_a_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RoutingPolicy(**kwargs)  # type: ignore[arg-type]


def test_weights_naming_an_opt_in_scorer_add_it_to_the_default_list() -> None:
    from worldpool.config import DEFAULT_WEIGHTS
    from worldpool.routing.registry import BUILTIN_SCORERS

    weights = {**DEFAULT_WEIGHTS, "completion_time": 0.4, "cost_per_work": 0.0}
    policy = RoutingPolicy(weights=weights)
    assert policy.scorers == (*BUILTIN_SCORERS, "completion_time")
    assert "completion_time" not in RoutingPolicy().scorers
