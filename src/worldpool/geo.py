"""Where things are: cloud regions and cities, distances, RTT estimates and local time.

The catalogue (:data:`REGIONS`) maps a code to a :class:`~worldpool.models.Location`:
AWS (``us-east-1``), GCP (``europe-west1``) and Azure (``westeurope``) regions, plus city
codes (``tokyo``, ``san-francisco``) for users and on-prem hosts. Codes are looked up
case-insensitively; spaces and underscores count as dashes (``"San Francisco"`` works).

``on-prem`` stands for "the orchestrator's own data centre". It defaults to the seed's
primary region, AWS us-east-1 (Ashburn, Virginia); change it per process with
:func:`set_on_prem` (``set_on_prem("frankfurt")``) or the ``WORLDPOOL_ON_PREM`` environment
variable (a catalogue code, read at import). ``REGIONS["on-prem"]`` always holds the
built-in default; :func:`location_for` returns the configured one.

RTT model (:func:`rtt_ms_from_km`): light in fibre covers about 200 km per ms, real routes
are about 1.5x the great-circle distance, a round trip doubles it, and switching / last
mile adds about 2 ms::

    rtt_ms = 2 * km * 1.5 / 200 + 2

Tokyo-London (9,560 km) comes out at ~145 ms; the measured RTT is 210-240 ms, so this is a
lower-bound-ish estimate meant for ranking workers, not for SLAs. Measured latencies
(``WorkerState.latency_ms``) win wherever the router has them.

Location objects in the catalogue are shared: treat them as read-only.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from worldpool.errors import ConfigError
from worldpool.models import Location

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
FIBRE_KM_PER_MS = 200.0  # ~2/3 c in glass
PATH_FACTOR = 1.5  # real routes vs great circle
BASE_RTT_MS = 2.0  # switching, last mile, TCP stack
NIGHT_START_HOUR = 22.0
NIGHT_END_HOUR = 6.0
ON_PREM = "on-prem"
ON_PREM_ENV = "WORLDPOOL_ON_PREM"

MACRO_REGIONS: tuple[str, ...] = ("americas", "europe", "asia-pacific", "middle-east", "africa")

_AM, _EU, _AP, _ME, _AF = MACRO_REGIONS

# code, provider, city, lat, lon, IANA zone, macro-region
_CATALOGUE: tuple[tuple[str, str, str, float, float, str, str], ...] = (
    # ---- AWS
    ("us-east-1", "aws", "Ashburn, Virginia", 39.04, -77.49, "America/New_York", _AM),
    ("us-east-2", "aws", "Columbus, Ohio", 39.96, -83.00, "America/New_York", _AM),
    ("us-west-1", "aws", "San Jose, California", 37.34, -121.89, "America/Los_Angeles", _AM),
    ("us-west-2", "aws", "Boardman, Oregon", 45.84, -119.70, "America/Los_Angeles", _AM),
    ("ca-central-1", "aws", "Montreal", 45.50, -73.57, "America/Toronto", _AM),
    ("sa-east-1", "aws", "Sao Paulo", -23.55, -46.63, "America/Sao_Paulo", _AM),
    ("eu-west-1", "aws", "Dublin", 53.35, -6.26, "Europe/Dublin", _EU),
    ("eu-west-2", "aws", "London", 51.51, -0.13, "Europe/London", _EU),
    ("eu-west-3", "aws", "Paris", 48.86, 2.35, "Europe/Paris", _EU),
    ("eu-central-1", "aws", "Frankfurt", 50.11, 8.68, "Europe/Berlin", _EU),
    ("eu-north-1", "aws", "Stockholm", 59.33, 18.07, "Europe/Stockholm", _EU),
    ("eu-south-1", "aws", "Milan", 45.46, 9.19, "Europe/Rome", _EU),
    ("ap-northeast-1", "aws", "Tokyo", 35.68, 139.69, "Asia/Tokyo", _AP),
    ("ap-northeast-2", "aws", "Seoul", 37.57, 126.98, "Asia/Seoul", _AP),
    ("ap-northeast-3", "aws", "Osaka", 34.69, 135.50, "Asia/Tokyo", _AP),
    ("ap-southeast-1", "aws", "Singapore", 1.35, 103.82, "Asia/Singapore", _AP),
    ("ap-southeast-2", "aws", "Sydney", -33.87, 151.21, "Australia/Sydney", _AP),
    ("ap-south-1", "aws", "Mumbai", 19.08, 72.88, "Asia/Kolkata", _AP),
    ("ap-east-1", "aws", "Hong Kong", 22.32, 114.17, "Asia/Hong_Kong", _AP),
    ("me-south-1", "aws", "Manama, Bahrain", 26.07, 50.56, "Asia/Bahrain", _ME),
    ("me-central-1", "aws", "Dubai", 25.20, 55.27, "Asia/Dubai", _ME),
    ("af-south-1", "aws", "Cape Town", -33.92, 18.42, "Africa/Johannesburg", _AF),
    # ---- GCP
    ("us-central1", "gcp", "Council Bluffs, Iowa", 41.26, -95.86, "America/Chicago", _AM),
    ("us-east1", "gcp", "Moncks Corner, South Carolina", 33.20, -80.01, "America/New_York", _AM),
    ("us-east4", "gcp", "Ashburn, Virginia", 39.04, -77.49, "America/New_York", _AM),
    ("us-west1", "gcp", "The Dalles, Oregon", 45.60, -121.18, "America/Los_Angeles", _AM),
    ("us-west2", "gcp", "Los Angeles", 34.05, -118.24, "America/Los_Angeles", _AM),
    ("northamerica-northeast1", "gcp", "Montreal", 45.50, -73.57, "America/Toronto", _AM),
    ("southamerica-east1", "gcp", "Sao Paulo", -23.55, -46.63, "America/Sao_Paulo", _AM),
    ("europe-west1", "gcp", "St. Ghislain, Belgium", 50.45, 3.82, "Europe/Brussels", _EU),
    ("europe-west2", "gcp", "London", 51.51, -0.13, "Europe/London", _EU),
    ("europe-west3", "gcp", "Frankfurt", 50.11, 8.68, "Europe/Berlin", _EU),
    ("europe-west4", "gcp", "Eemshaven, Netherlands", 53.44, 6.83, "Europe/Amsterdam", _EU),
    ("europe-west9", "gcp", "Paris", 48.86, 2.35, "Europe/Paris", _EU),
    ("europe-north1", "gcp", "Hamina, Finland", 60.57, 27.20, "Europe/Helsinki", _EU),
    ("asia-northeast1", "gcp", "Tokyo", 35.68, 139.69, "Asia/Tokyo", _AP),
    ("asia-northeast3", "gcp", "Seoul", 37.57, 126.98, "Asia/Seoul", _AP),
    ("asia-east1", "gcp", "Changhua, Taiwan", 24.05, 120.52, "Asia/Taipei", _AP),
    ("asia-east2", "gcp", "Hong Kong", 22.32, 114.17, "Asia/Hong_Kong", _AP),
    ("asia-southeast1", "gcp", "Singapore", 1.34, 103.71, "Asia/Singapore", _AP),
    ("asia-south1", "gcp", "Mumbai", 19.08, 72.88, "Asia/Kolkata", _AP),
    ("australia-southeast1", "gcp", "Sydney", -33.87, 151.21, "Australia/Sydney", _AP),
    ("me-west1", "gcp", "Tel Aviv", 32.09, 34.78, "Asia/Jerusalem", _ME),
    ("africa-south1", "gcp", "Johannesburg", -26.20, 28.05, "Africa/Johannesburg", _AF),
    # ---- Azure
    ("eastus", "azure", "Boydton, Virginia", 36.67, -78.39, "America/New_York", _AM),
    ("eastus2", "azure", "Boydton, Virginia", 36.67, -78.39, "America/New_York", _AM),
    ("westus", "azure", "San Francisco", 37.78, -122.42, "America/Los_Angeles", _AM),
    ("westus2", "azure", "Quincy, Washington", 47.23, -119.85, "America/Los_Angeles", _AM),
    ("centralus", "azure", "Des Moines, Iowa", 41.59, -93.62, "America/Chicago", _AM),
    ("southcentralus", "azure", "San Antonio, Texas", 29.42, -98.49, "America/Chicago", _AM),
    ("canadacentral", "azure", "Toronto", 43.65, -79.38, "America/Toronto", _AM),
    ("brazilsouth", "azure", "Sao Paulo", -23.55, -46.63, "America/Sao_Paulo", _AM),
    ("westeurope", "azure", "Amsterdam", 52.37, 4.90, "Europe/Amsterdam", _EU),
    ("northeurope", "azure", "Dublin", 53.35, -6.26, "Europe/Dublin", _EU),
    ("uksouth", "azure", "London", 51.51, -0.13, "Europe/London", _EU),
    ("francecentral", "azure", "Paris", 48.86, 2.35, "Europe/Paris", _EU),
    ("germanywestcentral", "azure", "Frankfurt", 50.11, 8.68, "Europe/Berlin", _EU),
    ("swedencentral", "azure", "Gavle, Sweden", 60.67, 17.14, "Europe/Stockholm", _EU),
    ("eastasia", "azure", "Hong Kong", 22.32, 114.17, "Asia/Hong_Kong", _AP),
    ("southeastasia", "azure", "Singapore", 1.35, 103.82, "Asia/Singapore", _AP),
    ("japaneast", "azure", "Tokyo", 35.68, 139.69, "Asia/Tokyo", _AP),
    ("japanwest", "azure", "Osaka", 34.69, 135.50, "Asia/Tokyo", _AP),
    ("koreacentral", "azure", "Seoul", 37.57, 126.98, "Asia/Seoul", _AP),
    ("australiaeast", "azure", "Sydney", -33.87, 151.21, "Australia/Sydney", _AP),
    ("centralindia", "azure", "Pune", 18.52, 73.86, "Asia/Kolkata", _AP),
    ("uaenorth", "azure", "Dubai", 25.20, 55.27, "Asia/Dubai", _ME),
    ("southafricanorth", "azure", "Johannesburg", -26.20, 28.05, "Africa/Johannesburg", _AF),
    # ---- cities (users, on-prem sites)
    ("tokyo", "city", "Tokyo", 35.68, 139.69, "Asia/Tokyo", _AP),
    ("osaka", "city", "Osaka", 34.69, 135.50, "Asia/Tokyo", _AP),
    ("seoul", "city", "Seoul", 37.57, 126.98, "Asia/Seoul", _AP),
    ("beijing", "city", "Beijing", 39.90, 116.40, "Asia/Shanghai", _AP),
    ("shanghai", "city", "Shanghai", 31.23, 121.47, "Asia/Shanghai", _AP),
    ("hong-kong", "city", "Hong Kong", 22.32, 114.17, "Asia/Hong_Kong", _AP),
    ("taipei", "city", "Taipei", 25.03, 121.57, "Asia/Taipei", _AP),
    ("singapore", "city", "Singapore", 1.35, 103.82, "Asia/Singapore", _AP),
    ("jakarta", "city", "Jakarta", -6.21, 106.85, "Asia/Jakarta", _AP),
    ("mumbai", "city", "Mumbai", 19.08, 72.88, "Asia/Kolkata", _AP),
    ("bangalore", "city", "Bangalore", 12.97, 77.59, "Asia/Kolkata", _AP),
    ("sydney", "city", "Sydney", -33.87, 151.21, "Australia/Sydney", _AP),
    ("melbourne", "city", "Melbourne", -37.81, 144.96, "Australia/Melbourne", _AP),
    ("auckland", "city", "Auckland", -36.85, 174.76, "Pacific/Auckland", _AP),
    ("london", "city", "London", 51.51, -0.13, "Europe/London", _EU),
    ("dublin", "city", "Dublin", 53.35, -6.26, "Europe/Dublin", _EU),
    ("paris", "city", "Paris", 48.86, 2.35, "Europe/Paris", _EU),
    ("frankfurt", "city", "Frankfurt", 50.11, 8.68, "Europe/Berlin", _EU),
    ("berlin", "city", "Berlin", 52.52, 13.40, "Europe/Berlin", _EU),
    ("amsterdam", "city", "Amsterdam", 52.37, 4.90, "Europe/Amsterdam", _EU),
    ("madrid", "city", "Madrid", 40.42, -3.70, "Europe/Madrid", _EU),
    ("milan", "city", "Milan", 45.46, 9.19, "Europe/Rome", _EU),
    ("stockholm", "city", "Stockholm", 59.33, 18.07, "Europe/Stockholm", _EU),
    ("warsaw", "city", "Warsaw", 52.23, 21.01, "Europe/Warsaw", _EU),
    ("san-francisco", "city", "San Francisco", 37.77, -122.42, "America/Los_Angeles", _AM),
    ("los-angeles", "city", "Los Angeles", 34.05, -118.24, "America/Los_Angeles", _AM),
    ("seattle", "city", "Seattle", 47.61, -122.33, "America/Los_Angeles", _AM),
    ("virginia", "city", "Ashburn, Virginia", 39.04, -77.49, "America/New_York", _AM),
    ("new-york", "city", "New York", 40.71, -74.01, "America/New_York", _AM),
    ("chicago", "city", "Chicago", 41.88, -87.63, "America/Chicago", _AM),
    ("dallas", "city", "Dallas", 32.78, -96.80, "America/Chicago", _AM),
    ("toronto", "city", "Toronto", 43.65, -79.38, "America/Toronto", _AM),
    ("mexico-city", "city", "Mexico City", 19.43, -99.13, "America/Mexico_City", _AM),
    ("sao-paulo", "city", "Sao Paulo", -23.55, -46.63, "America/Sao_Paulo", _AM),
    ("buenos-aires", "city", "Buenos Aires", -34.60, -58.38, "America/Argentina/Buenos_Aires", _AM),
    ("dubai", "city", "Dubai", 25.20, 55.27, "Asia/Dubai", _ME),
    ("tel-aviv", "city", "Tel Aviv", 32.09, 34.78, "Asia/Jerusalem", _ME),
    ("riyadh", "city", "Riyadh", 24.71, 46.68, "Asia/Riyadh", _ME),
    ("johannesburg", "city", "Johannesburg", -26.20, 28.05, "Africa/Johannesburg", _AF),
    ("cape-town", "city", "Cape Town", -33.92, 18.42, "Africa/Johannesburg", _AF),
    ("lagos", "city", "Lagos", 6.52, 3.38, "Africa/Lagos", _AF),
    ("nairobi", "city", "Nairobi", -1.29, 36.82, "Africa/Nairobi", _AF),
    ("cairo", "city", "Cairo", 30.04, 31.24, "Africa/Cairo", _AF),
    # the orchestrator's own site; see the module docstring and set_on_prem()
    (ON_PREM, "on-prem", "Ashburn, Virginia (on-prem)", 39.04, -77.49, "America/New_York", _AM),
)


def _build() -> tuple[Mapping[str, Location], Mapping[str, str]]:
    regions: dict[str, Location] = {}
    providers: dict[str, str] = {}
    for code, provider, city, lat, lon, tz, macro in _CATALOGUE:
        assert code not in regions, f"duplicate region code {code}"
        regions[code] = Location(
            region=code, city=city, lat=lat, lon=lon, macro_region=macro, timezone=tz
        )
        providers[code] = provider
    return MappingProxyType(regions), MappingProxyType(providers)


REGIONS, PROVIDERS = _build()
"""``REGIONS``: code -> Location (read-only). ``PROVIDERS``: code -> aws/gcp/azure/city/on-prem."""

_on_prem: Location = REGIONS[ON_PREM]


def _normalize(code: str) -> str:
    return code.strip().lower().replace("_", "-").replace(" ", "-")


def try_location(code: str) -> Location | None:
    """The catalogue entry for ``code`` (case-insensitive), or None if there is none."""
    key = _normalize(code)
    if key == ON_PREM:
        return _on_prem
    return REGIONS.get(key)


def location_for(code: str) -> Location:
    """The catalogue entry for ``code``; :class:`ConfigError` with a did-you-mean otherwise.

    >>> location_for("AP-Northeast-1").city
    'Tokyo'
    """
    loc = try_location(code)
    if loc is not None:
        return loc
    close = difflib.get_close_matches(_normalize(code), list(REGIONS), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(
        f"unknown region or city {code!r}.{hint} Use a cloud region code (us-east-1, "
        "europe-west1, westeurope), a city (tokyo, san-francisco) or 'on-prem'; "
        "see worldpool.geo.REGIONS for the full list."
    )


def place_for(text: str) -> Location:
    """A location from a catalogue code or from a place as the seed writes it ("Tokyo,
    Japan", "Virginia, USA", "On-premises DC"): the code, else its first comma-separated
    part, else on-prem for an "on-prem..." place; the text is kept as the city. Unknown
    places raise :class:`ConfigError` as :func:`location_for` does."""
    loc = try_location(text)
    if loc is not None:
        return loc
    head = text.split(",", 1)[0]
    loc = try_location(head)
    if loc is None and _normalize(text).startswith(("on-prem", "onprem")):
        loc = _on_prem
    if loc is None:
        return location_for(text)
    return loc.model_copy(update={"city": text.strip()})


def set_on_prem(place: str | Location) -> Location:
    """Point ``on-prem`` at another place (a catalogue code or a Location); returns it.

    The result keeps ``region='on-prem'`` so pools still say where the host is logically.
    """
    global _on_prem
    base = location_for(place) if isinstance(place, str) else place
    if base.region != ON_PREM:
        base = base.model_copy(
            update={"region": ON_PREM, "city": f"{base.city or base.region} (on-prem)"}
        )
    _on_prem = base
    return _on_prem


def on_prem_location() -> Location:
    """Where ``on-prem`` currently points."""
    return _on_prem


if os.environ.get(ON_PREM_ENV):
    set_on_prem(os.environ[ON_PREM_ENV])


# --------------------------------------------------------------------------- distance / RTT


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance (haversine) in km."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp = p2 - p1
    dl = math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_km_many(
    lat: float, lon: float, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Distances in km from one point to many (degrees in), vectorised."""
    p1 = math.radians(lat)
    p2 = np.radians(np.asarray(lats, dtype=np.float64))
    dl = np.radians(np.asarray(lons, dtype=np.float64) - lon)
    h = np.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return out


@overload
def rtt_ms_from_km(km: float) -> float: ...
@overload
def rtt_ms_from_km(km: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
def rtt_ms_from_km(
    km: float | npt.NDArray[np.float64],
) -> float | npt.NDArray[np.float64]:
    """Estimated round-trip time for a great-circle distance (model in the module doc)."""
    if isinstance(km, np.ndarray):
        out: npt.NDArray[np.float64] = 2.0 * km * PATH_FACTOR / FIBRE_KM_PER_MS + BASE_RTT_MS
        return out
    return 2.0 * float(km) * PATH_FACTOR / FIBRE_KM_PER_MS + BASE_RTT_MS


def rtt_ms(a: Location, b: Location) -> float:
    """Estimated round-trip time between two places in ms."""
    return rtt_ms_from_km(distance_km(a, b))


# --------------------------------------------------------------------------- local time

_BUCKET_S = 3600


@lru_cache(maxsize=512)
def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {timezone!r}: use an IANA name such as 'Europe/London' "
            "(install the 'tzdata' package if the system has no /usr/share/zoneinfo)"
        ) from exc


def _offset_at(timezone: str, at: float) -> float:
    delta = datetime.fromtimestamp(at, tz=UTC).astimezone(_zone(timezone)).utcoffset()
    return 0.0 if delta is None else delta.total_seconds() / 3600.0


@lru_cache(maxsize=8192)
def _bucket_offsets(timezone: str, bucket: int) -> tuple[float, float]:
    start = bucket * _BUCKET_S
    return _offset_at(timezone, start), _offset_at(timezone, start + _BUCKET_S - 1e-3)


def utc_offset_hours(timezone: str, at: float) -> float:
    """UTC offset of ``timezone`` at epoch second ``at`` in hours (DST-correct).

    Cached per (zone, UTC hour). Some zones change offset mid-hour (Adelaide switches at
    16:30 UTC), so a bucket whose two ends disagree is computed exactly.
    """
    first, last = _bucket_offsets(timezone, int(at // _BUCKET_S))
    if first == last:
        return first
    return _offset_at(timezone, at)


def local_hour(loc: Location, at: float) -> float:
    """Local wall-clock hour at ``loc`` for epoch second ``at``: ``0 <= h < 24``."""
    local_s = at + utc_offset_hours(loc.timezone, at) * 3600.0
    return (local_s % 86400.0) / 3600.0


def is_night(loc: Location, at: float) -> bool:
    """True between 22:00 and 06:00 local time (follow-the-sun prefers these regions)."""
    h = local_hour(loc, at)
    return h >= NIGHT_START_HOUR or h < NIGHT_END_HOUR


# --------------------------------------------------------------------------- patterns


def region_matches(loc: Location, pattern: str) -> bool:
    """Does ``loc`` match ``pattern``?

    ``pattern`` is an exact code (``us-east-1``), a glob over the code (``eu-*``,
    ``europe-*``, ``us-*``) or a macro-region name (``europe``, ``asia-pacific``).
    Case-insensitive.
    """
    pat = _normalize(pattern)
    code = loc.region.lower()
    if pat == code:
        return True
    if pat in MACRO_REGIONS:
        return loc.macro_region == pat
    if any(ch in pat for ch in "*?["):
        return fnmatch.fnmatchcase(code, pat)
    return False
