"""A documented model of time-of-day electricity price and carbon intensity per region.

Not live data: a stand-in that has the right shape, so that follow-the-sun has a signal
and the simulator can charge and count it. Both depend on the region's *local* hour
``h`` (DST-aware, from the worker's time zone).

* **Price factor** (spot-like): ``1 - PRICE_NIGHT_DISCOUNT * night(h)``, where ``night``
  is 1.0 from 22:00 to 06:00 and falls smoothly to 0.0 at 14:00
  (:func:`night_score`): capacity costs 70 % of list price at night, list price in the
  afternoon peak. Multiplies a worker's ``cost_per_hour``.
* **Carbon intensity** (g CO2 per kWh): the region's yearly average
  (:data:`CARBON_G_PER_KWH`, rounded public grid figures; by macro-region when the
  region is not listed) times ``1 + CARBON_SWING * cos(2 pi (h - 19) / 24)``: the evening
  peak (19:00) 20 % above the average, the early morning (07:00) 20 % below.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from worldpool.models import Location

F64 = npt.NDArray[np.float64]

PEAK_HOUR = 2.0
NIGHT_HALF_WIDTH_H = 4.0
PRICE_NIGHT_DISCOUNT = 0.3
CARBON_SWING = 0.2
CARBON_PEAK_HOUR = 19.0

#: Yearly average grid intensity, g CO2/kWh, by region code (rounded public figures).
CARBON_G_PER_KWH: dict[str, float] = {
    "us-east-1": 380.0,
    "eastus": 380.0,
    "us-west-2": 150.0,
    "westus2": 100.0,
    "us-central1": 450.0,
    "ca-central-1": 30.0,
    "sa-east-1": 100.0,
    "brazilsouth": 100.0,
    "san-francisco": 200.0,
    "eu-west-1": 300.0,
    "eu-central-1": 380.0,
    "europe-west1": 160.0,
    "europe-west4": 330.0,
    "westeurope": 330.0,
    "uksouth": 200.0,
    "london": 200.0,
    "eu-north-1": 30.0,
    "ap-northeast-1": 460.0,
    "asia-northeast1": 460.0,
    "tokyo": 460.0,
    "ap-southeast-1": 470.0,
    "eastasia": 600.0,
    "ap-south-1": 700.0,
    "australiaeast": 600.0,
    "koreacentral": 430.0,
    "me-central-1": 450.0,
    "southafricanorth": 850.0,
}
CARBON_BY_MACRO_REGION: dict[str, float] = {
    "americas": 350.0,
    "europe": 250.0,
    "asia-pacific": 550.0,
    "middle-east": 500.0,
    "africa": 700.0,
}
CARBON_UNKNOWN = 450.0


def night_score(local_hour: F64) -> F64:
    """1.0 from 22:00 to 06:00 local, then a smooth fall to 0.0 at 14:00."""
    d = np.abs((local_hour - PEAK_HOUR + 12.0) % 24.0 - 12.0)
    ramp = (1.0 + np.cos(math.pi * (d - NIGHT_HALF_WIDTH_H) / (12.0 - NIGHT_HALF_WIDTH_H))) / 2
    out: F64 = np.where(d <= NIGHT_HALF_WIDTH_H, 1.0, ramp)
    return out


def price_factor(local_hour: F64) -> F64:
    """Multiplier of the list price at these local hours (0.7 at night, 1.0 at 14:00)."""
    out: F64 = 1.0 - PRICE_NIGHT_DISCOUNT * night_score(local_hour)
    return out


def carbon_base(loc: Location) -> float:
    """The yearly average intensity of ``loc``'s grid, g CO2/kWh."""
    if loc.region in CARBON_G_PER_KWH:
        return CARBON_G_PER_KWH[loc.region]
    return CARBON_BY_MACRO_REGION.get(loc.macro_region, CARBON_UNKNOWN)


def carbon_factor(local_hour: F64) -> F64:
    """Multiplier of the yearly average at these local hours (1.2 at 19:00, 0.8 at 07:00)."""
    out: F64 = 1.0 + CARBON_SWING * np.cos(2.0 * math.pi * (local_hour - CARBON_PEAK_HOUR) / 24.0)
    return out
