"""Fake plugins for testing the engine itself (k8s fake_plugins style)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from worldpool.models import Verdict, Worker
from worldpool.routing import PoolSnapshot, RoutingContext
from worldpool.routing.interface import Mask, Rows, Scores, excluded, ok


class RejectIds:
    """A filter that rejects the given worker ids (only mask + verdict, no failures())."""

    def __init__(self, name: str, ids: set[str]) -> None:
        self.name = name
        self.ids = ids

    def mask(self, ctx: RoutingContext, pool: PoolSnapshot) -> Mask:
        return np.array([w.id not in self.ids for w in pool.workers], dtype=np.bool_)

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        if worker.id in self.ids:
            return excluded(self.name, "rejected", f"{worker.id} is on the reject list")
        return ok(self.name)


class FixedScores:
    """A scorer giving each worker id a fixed score (default ``default``)."""

    def __init__(self, name: str, scores: dict[str, float], default: float = 0.0) -> None:
        self.name = name
        self.scores = scores
        self.default = default

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        ids = pool.workers
        return np.array([self.scores.get(ids[r].id, self.default) for r in rows], np.float64)


class NotApplicable:
    def __init__(self, name: str) -> None:
        self.name = name

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        return None


class Raw:
    """A scorer returning whatever ``fn`` gives (for clipping / shape tests)."""

    def __init__(self, name: str, fn: Callable[[Rows], Scores]) -> None:
        self.name = name
        self.fn = fn

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        return self.fn(rows)
