"""follow_the_sun: heavy batch inference prefers regions where it is night.

Night capacity is idle and often cheaper. With ``d`` the distance in hours between the
worker's local time and 02:00 (0..12):

* ``d <= 4`` (22:00 to 06:00 local): 1.0;
* otherwise ``(1 + cos(pi * (d - 4) / 8)) / 2``: a smooth fall to 0.0 at 14:00.

Applies only to ``task.heavy``. Local time comes from each worker's time zone (DST-aware),
computed once per distinct zone and minute.
"""

from __future__ import annotations

import math

import numpy as np

from worldpool import geo
from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot

PEAK_HOUR = 2.0
NIGHT_HALF_WIDTH_H = 4.0


def night_score(local_hour: Scores) -> Scores:
    """The score for local hours (0..24), see the module doc."""
    d = np.abs((local_hour - PEAK_HOUR + 12.0) % 24.0 - 12.0)
    ramp = (1.0 + np.cos(math.pi * (d - NIGHT_HALF_WIDTH_H) / (12.0 - NIGHT_HALF_WIDTH_H))) / 2
    out: Scores = np.where(d <= NIGHT_HALF_WIDTH_H, 1.0, ramp)
    return out


class FollowTheSunScorer:
    name = "follow_the_sun"
    bounded = True  # night_score is in [0, 1]

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        if not ctx.task.heavy:
            return None
        minute = int(ctx.now // 60)
        per_zone: Scores = pool.memo(("night", minute), lambda: _zone_scores(pool, minute * 60.0))
        out: Scores = per_zone[pool.timezone_index[rows]]
        return out


def _zone_scores(pool: PoolSnapshot, at: float) -> Scores:
    """The night score of each distinct time zone of the pool at epoch second ``at``."""
    offsets = np.array([geo.utc_offset_hours(tz, at) for tz in pool.timezones], np.float64)
    return night_score(((at + offsets * 3600.0) % 86400.0) / 3600.0)
