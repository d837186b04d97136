"""geo_proximity: interactive tasks prefer workers near the user — ``1 - km / 20015``.

20,015 km is half the Earth's circumference, the farthest two points can be, so the
score is 1 next door and 0 at the antipode. Not applicable (None) to batch tasks or when
the user's location is unknown.

Distance is counted once: when the policy also scores ``latency`` (which, for the same
tasks, is the RTT estimated from the same distance) or ``completion_time`` (which adds
that RTT in seconds), this scorer steps aside (None) unless
``RoutingPolicy.count_distance_once`` is False (the seed's double count).
"""

from __future__ import annotations

import numpy as np

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.scorers.base import user_location

HALF_CIRCUMFERENCE_KM = 20015.0


class GeoProximityScorer:
    name = "geo_proximity"
    bounded = True  # clipped here, once per user location and profile change

    def __init__(self, defer: bool = False) -> None:
        self.defer = defer  # another scorer of the policy already counts the distance

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        user = user_location(ctx)
        if user is None or self.defer:
            return None

        def column() -> Scores:
            near = 1.0 - pool.distance_km_from(user) / HALF_CIRCUMFERENCE_KM
            out: Scores = np.fmin(np.fmax(near, 0.0), 1.0)
            return out

        scores: Scores = pool.memo(("geo_proximity", user.lat, user.lon), column)[rows]
        return scores
