from __future__ import annotations

import pytest

from tests.routing.fakes import FixedScores, RejectIds
from worldpool.errors import ConfigError
from worldpool.routing import RoutingPolicy, register_filter, register_scorer
from worldpool.routing.registry import BUILTIN_FILTERS, BUILTIN_SCORERS, FILTERS, SCORERS


def test_builtins_are_registered() -> None:
    assert set(BUILTIN_FILTERS) == {
        "health",
        "capabilities",
        "hardware",
        "capacity",
        "affinity",
        "region",
    }
    assert set(BUILTIN_SCORERS) == {
        "capability_match",
        "load",
        "latency",
        "cost",
        "geo_proximity",
        "follow_the_sun",
        "soft_affinity",
        "data_locality",
    }
    for name in BUILTIN_FILTERS:
        assert FILTERS.create(name, RoutingPolicy()).name == name
    for name in BUILTIN_SCORERS:
        assert SCORERS.create(name, RoutingPolicy()).name == name


def test_duplicate_names_are_rejected_unless_replacing() -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_filter("health", lambda p: RejectIds("health", set()))
    register_scorer("tmp_scorer", lambda p: FixedScores("tmp_scorer", {}))
    try:
        with pytest.raises(ConfigError, match="already registered"):
            register_scorer("tmp_scorer", lambda p: FixedScores("tmp_scorer", {}))
        register_scorer("tmp_scorer", lambda p: FixedScores("tmp_scorer", {}), replace=True)
    finally:
        SCORERS.unregister("tmp_scorer")
    assert "tmp_scorer" not in SCORERS


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'latency'") as err:
        SCORERS.check("latncy")
    assert "capability_match" in str(err.value)


def test_bad_names_and_misnamed_plugins() -> None:
    with pytest.raises(ConfigError, match="must be letters"):
        register_filter("bad name!", lambda p: RejectIds("bad name!", set()))
    register_filter("liar", lambda p: RejectIds("truthful", set()))
    try:
        with pytest.raises(ConfigError, match="must equal its registered name"):
            FILTERS.create("liar", RoutingPolicy())
    finally:
        FILTERS.unregister("liar")
