"""latency: prefer low round-trip time — ``1 - ms / latency_scale_ms``, clipped to [0, 1].

For an interactive task with a user location, ``ms`` is the RTT estimated from the
great-circle distance worker → user (:func:`worldpool.geo.rtt_ms_from_km`); otherwise it
is the worker's measured latency to the orchestrator (heartbeat), falling back to the
profile's ``latency_to_orchestrator_ms``. The seed's scale is 500 ms.
"""

from __future__ import annotations

import numpy as np

from worldpool import geo
from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.scorers.base import user_location


def latency_ms(ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores:
    """The latency each row is judged by (see the module doc)."""
    user = user_location(ctx)
    if user is None:
        out: Scores = pool.latency_ms[rows]
        return out
    return geo.rtt_ms_from_km(pool.distance_km_from(user)[rows])


class LatencyScorer:
    name = "latency"

    bounded = True  # clipped (NaN -> 0) here

    def __init__(self, scale_ms: float = 500.0) -> None:
        self.scale_ms = scale_ms

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        user = user_location(ctx)
        if user is None:  # measured latency changes with every heartbeat
            return self._scores(pool.latency_ms[rows])
        # From geography only: one column per user location until profiles change.
        column: Scores = pool.memo(
            ("latency", user.lat, user.lon, self.scale_ms),
            lambda: self._scores(geo.rtt_ms_from_km(pool.distance_km_from(user))),
        )
        out: Scores = column[rows]
        return out

    def _scores(self, ms: Scores) -> Scores:
        out: Scores = np.fmin(np.fmax(1.0 - ms / self.scale_ms, 0.0), 1.0)
        return out
