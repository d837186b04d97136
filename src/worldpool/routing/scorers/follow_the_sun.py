"""follow_the_sun: heavy batch inference goes where power is cheap and clean right now.

Driven by the time-of-day price and carbon model of
:mod:`worldpool.routing.scorers.grid`, at each worker's local hour: with ``p`` the price
factor (0.7 at night .. 1.0 at 14:00) and ``g`` the grid's carbon intensity (g/kWh),
each scaled min-max over the feasible rows (cheapest / cleanest 0, dearest / dirtiest 1):

    score = 1 - (p_scaled + g_scaled) / 2

so the row that is both cheapest and cleanest scores 1.0; when every row has the same
signal all score 1.0. Applies only to ``task.heavy``. Local time comes from each
worker's time zone (DST-aware), computed once per distinct zone and minute.
"""

from __future__ import annotations

import numpy as np

from worldpool import geo
from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.scorers.grid import (
    carbon_base,
    carbon_factor,
    night_score,
    price_factor,
)

__all__ = ["FollowTheSunScorer", "night_score", "signals"]


def _scaled(values: Scores) -> Scores:
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12:
        return np.zeros(len(values), dtype=np.float64)
    out: Scores = (values - low) / (high - low)
    return out


def signals(pool: PoolSnapshot, now: float) -> tuple[Scores, Scores]:
    """Per row: the price factor and the carbon intensity (g/kWh) at epoch ``now``."""
    minute = int(now // 60)

    def compute() -> tuple[Scores, Scores]:
        at = minute * 60.0
        offsets = np.array([geo.utc_offset_hours(tz, at) for tz in pool.timezones], np.float64)
        hours = ((at + offsets * 3600.0) % 86400.0) / 3600.0
        price = price_factor(hours)[pool.timezone_index]
        base = pool.memo(
            ("grid.carbon",),
            lambda: np.array([carbon_base(w.profile.location) for w in pool.workers]),
        )
        carbon = base * carbon_factor(hours)[pool.timezone_index]
        return price, carbon

    out: tuple[Scores, Scores] = pool.memo(("grid.signals", minute), compute)
    return out


class FollowTheSunScorer:
    name = "follow_the_sun"
    bounded = True  # 1 - a mean of two [0, 1] values

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        if not ctx.task.heavy or len(rows) == 0:
            return None
        price, carbon = signals(pool, ctx.now)
        out: Scores = 1.0 - (_scaled(price[rows]) + _scaled(carbon[rows])) / 2.0
        return out

    def detail(self, ctx: RoutingContext, pool: PoolSnapshot, row: int) -> str | None:
        if not ctx.task.heavy:
            return None
        price, carbon = signals(pool, ctx.now)
        return f"price x{float(price[row]):.2f}, {float(carbon[row]):.0f} g CO2/kWh now"
