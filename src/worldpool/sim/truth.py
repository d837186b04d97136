"""What really happens, as opposed to what the router believes: the honest simulator.

Every part is off in a default :class:`~worldpool.sim.timing.SimConfig` (so hand-computed
scenarios stay exact) and on in :data:`HONEST` (the evidence runs):

* **Batching curve** (``batching`` = b): an LLM request on a box with ``k`` requests in
  flight (itself included, counted when it starts) runs at ``1 / (1 + b (k - 1))`` of
  the one-request speed; with b = 0.04 a full 8-slot box gives each request 78 % of it.
  Workers advertise ``concurrent_requests = 8``, so the router believes there is no
  slowdown up to 8 (its knee model): the gap is part of the test.
* **Noise** (``noise`` = sigma): each box's true model speed (LLM work) and each
  worker's network distance (every round trip and transfer) are off from what it
  advertises by a factor ``exp(N(0, sigma))`` drawn once per worker, and each attempt's
  run time by another ``exp(N(0, sigma / 2))``. Seeded (``seed + 7``), so a run stays
  deterministic.
* **Time-of-day prices** (``time_of_day``): a worker costs ``cost_per_hour`` times the
  price factor of :mod:`worldpool.routing.scorers.grid` at its local hour (the middle of
  each slot hold; the idle fleet per 15 minutes).
* **Carbon** (always counted): power per box ``GPU_WATTS`` per GPU plus
  ``CPU_WATTS`` per core, a slot's share while held, times the grid's intensity at that
  hour (:func:`~worldpool.routing.scorers.grid.carbon_base` x ``carbon_factor``).

Stale snapshots and several deciders are in :mod:`worldpool.sim.views`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from worldpool import geo
from worldpool.models import WorkerProfile
from worldpool.routing.scorers.grid import carbon_base, carbon_factor, price_factor

F64 = npt.NDArray[np.float64]

#: The honest simulator's settings of the evidence runs (``worldpool simulate --honest``):
#: SimConfig fields, failures included.
HONEST: dict[str, float | int | bool] = {
    "batching": 0.04,
    "noise": 0.15,
    "stale_s": 2.0,
    "deciders": 4,
    "time_of_day": True,
    "fail_p": 0.005,
    "crash_per_worker_day": 0.05,
}
GPU_WATTS = {"H100": 700.0, "A100": 400.0, "L4": 72.0}
GPU_WATTS_OTHER = 300.0
CPU_WATTS = 8.0
BUCKET_S = 900.0


def box_kw(p: WorkerProfile) -> float:
    """The box's power draw when busy, kW (GPUs by model, plus its cores)."""
    watts = CPU_WATTS * p.hardware.cpus
    for g in p.hardware.gpus:
        key = next((k for k in GPU_WATTS if k in g.model.upper()), None)
        watts += (GPU_WATTS[key] if key else GPU_WATTS_OTHER) * g.count
    return watts / 1000.0


class Truth:
    """Per-worker truth factors and the time-of-day price and carbon of each worker."""

    def __init__(
        self,
        profiles: list[WorkerProfile],
        *,
        start_epoch: float,
        seed: int,
        noise: float = 0.0,
        batching: float = 0.0,
        time_of_day: bool = False,
    ) -> None:
        n = len(profiles)
        self.noise, self.batching, self.time_of_day = noise, batching, time_of_day
        self.start_epoch = start_epoch
        self.rng = np.random.default_rng(seed + 7)
        if noise > 0:
            self.speed = np.exp(self.rng.normal(0.0, noise, n))
            self.distance = np.exp(self.rng.normal(0.0, noise, n))
        else:
            self.speed = np.ones(n)
            self.distance = np.ones(n)
        zones = [p.location.timezone for p in profiles]
        self.zones = sorted(set(zones))
        self.zone_of = np.array([self.zones.index(z) for z in zones], np.intp)
        self.kw_per_slot = np.array([box_kw(p) / p.max_concurrency for p in profiles])
        self.carbon_base = np.array([carbon_base(p.location) for p in profiles])
        self.gpu = np.array([bool(p.hardware.gpus) for p in profiles])
        self._hours: dict[int, F64] = {}
        self._carbon: dict[tuple[int, int], float] = {}  # (bucket, zone) -> carbon factor
        self._price: dict[tuple[int, int], float] = {}  # (bucket, zone) -> price factor

    def jitter(self) -> float:
        """One attempt's run-time factor (1.0 without noise)."""
        return float(np.exp(self.rng.normal(0.0, self.noise / 2))) if self.noise > 0 else 1.0

    def slowdown(self, in_flight: int) -> float:
        """Run-time factor of an LLM request joining a batch of ``in_flight`` (itself in)."""
        return 1.0 + self.batching * max(0, in_flight - 1)

    def _local_hours(self, t: float) -> F64:
        """Local hour of every zone at sim time ``t`` (per 15-minute bucket)."""
        b = int(t // BUCKET_S)
        hours = self._hours.get(b)
        if hours is None:
            at = self.start_epoch + b * BUCKET_S + BUCKET_S / 2
            off = np.array([geo.utc_offset_hours(z, at) for z in self.zones])
            hours = self._hours[b] = ((at + off * 3600.0) % 86400.0) / 3600.0
        return hours

    def price(self, row: int, t: float) -> float:
        """Price factor of ``row`` at sim time ``t`` (1.0 without time-of-day prices)."""
        if not self.time_of_day:
            return 1.0
        zone = int(self.zone_of[row])
        key = (int(t // BUCKET_S), zone)
        factor = self._price.get(key)
        if factor is None:  # once per zone and 15-minute bucket
            factor = self._price[key] = float(
                price_factor(self._local_hours(t)[zone : zone + 1])[0]
            )
        return factor

    def carbon_kg(self, row: int, t: float, held_s: float) -> float:
        """kg CO2 of one slot of ``row`` held ``held_s`` around sim time ``t``."""
        zone = int(self.zone_of[row])
        key = (int(t // BUCKET_S), zone)
        factor = self._carbon.get(key)
        if factor is None:  # once per zone and 15-minute bucket
            h = self._local_hours(t)[zone : zone + 1]
            factor = self._carbon[key] = float(carbon_factor(h)[0])
        g = float(self.carbon_base[row]) * factor
        return float(self.kw_per_slot[row]) * held_s / 3600.0 * g / 1000.0

    def fleet_cost(self, hourly: F64, until_s: float) -> float:
        """What the whole fleet costs from 0 to ``until_s``, busy or idle (USD)."""
        total, t = 0.0, 0.0
        while t < until_s:
            step = min(BUCKET_S, until_s - t)
            if self.time_of_day:
                factor = price_factor(self._local_hours(t))[self.zone_of]
                total += float((hourly * factor).sum()) * step / 3600.0
            else:
                total += float(hourly.sum()) * step / 3600.0
            t += step
        return total
