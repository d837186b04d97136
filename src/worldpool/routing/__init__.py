"""Explainable routing: filters remove workers that cannot run a task, weighted scorers
rank the rest, and every decision says why. See docs/routing.md.
"""

from worldpool.routing.engine import Router
from worldpool.routing.explain import explain_table
from worldpool.routing.interface import Filter, RoutingContext, Scorer
from worldpool.routing.policy import RoutingPolicy
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.registry import register_filter, register_scorer

__all__ = [
    "Filter",
    "PoolSnapshot",
    "Router",
    "RoutingContext",
    "RoutingPolicy",
    "Scorer",
    "explain_table",
    "register_filter",
    "register_scorer",
]
