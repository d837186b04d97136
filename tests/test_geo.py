"""Tests for the region catalogue, distances, RTT estimates and local time."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from worldpool import geo
from worldpool.errors import ConfigError
from worldpool.models import Location


def _ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_catalogue_covers_three_clouds_and_macro_regions() -> None:
    providers = [p for p in geo.PROVIDERS.values() if p in {"aws", "gcp", "azure"}]
    assert len(providers) >= 30
    assert {"aws", "gcp", "azure"} <= set(providers)
    for code, loc in geo.REGIONS.items():
        assert loc.region == code
        assert loc.macro_region in geo.MACRO_REGIONS
        assert loc.city
        geo.utc_offset_hours(loc.timezone, 0.0)  # every zone resolves
    assert {loc.macro_region for loc in geo.REGIONS.values()} == set(geo.MACRO_REGIONS)


def test_catalogue_is_immutable() -> None:
    with pytest.raises(TypeError):
        geo.REGIONS["x"] = geo.REGIONS["tokyo"]  # type: ignore[index]


def test_lookup_is_case_insensitive_and_accepts_city_spelling() -> None:
    assert geo.location_for("AP-Northeast-1").city == "Tokyo"
    assert geo.location_for("San Francisco").region == "san-francisco"
    assert geo.try_location("nowhere") is None


def test_unknown_code_error_suggests_close_codes() -> None:
    with pytest.raises(ConfigError) as info:
        geo.location_for("us-east-7")
    text = str(info.value)
    assert "unknown region or city 'us-east-7'" in text
    assert "Did you mean" in text and "'us-east-1'" in text


def test_known_distance_tokyo_london() -> None:
    km = geo.distance_km(geo.location_for("tokyo"), geo.location_for("london"))
    assert km == pytest.approx(9560, rel=0.01)
    assert geo.distance_km(geo.REGIONS["tokyo"], geo.REGIONS["tokyo"]) == 0.0


def test_vectorised_distance_matches_scalar() -> None:
    origin = geo.location_for("frankfurt")
    others = [geo.location_for(c) for c in ("tokyo", "sydney", "sao-paulo", "frankfurt")]
    lats = np.array([o.lat for o in others])
    lons = np.array([o.lon for o in others])
    many = geo.distance_km_many(origin.lat, origin.lon, lats, lons)
    expected = [geo.distance_km(origin, o) for o in others]
    assert many == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_rtt_model_and_monotonicity() -> None:
    assert geo.rtt_ms_from_km(0.0) == pytest.approx(geo.BASE_RTT_MS)
    assert geo.rtt_ms_from_km(1000.0) == pytest.approx(2 * 1000 * 1.5 / 200 + 2)
    kms = np.linspace(0, 20000, 50)
    rtts = geo.rtt_ms_from_km(kms)
    assert np.all(np.diff(rtts) > 0)
    london = geo.location_for("london")
    assert geo.rtt_ms(london, geo.location_for("paris")) < geo.rtt_ms(
        london, geo.location_for("tokyo")
    )


def test_dst_changes_london_local_hour() -> None:
    london = geo.location_for("london")
    assert geo.local_hour(london, _ts(2024, 1, 15, 12)) == pytest.approx(12.0)
    assert geo.local_hour(london, _ts(2024, 7, 15, 12)) == pytest.approx(13.0)
    assert geo.utc_offset_hours("Europe/London", _ts(2024, 7, 15, 12)) == 1.0


def test_offset_switch_mid_hour_is_exact() -> None:
    # Adelaide leaves DST on 2024-04-07 at 03:00 ACDT = 16:30 UTC (+10:30 -> +09:30).
    assert geo.utc_offset_hours("Australia/Adelaide", _ts(2024, 4, 6, 16, 20)) == 10.5
    assert geo.utc_offset_hours("Australia/Adelaide", _ts(2024, 4, 6, 16, 40)) == 9.5


def test_local_hour_is_fractional_and_bounded() -> None:
    tokyo = geo.location_for("tokyo")
    h = geo.local_hour(tokyo, _ts(2024, 3, 1, 14, 30))  # 23:30 JST
    assert h == pytest.approx(23.5)
    assert 0 <= geo.local_hour(tokyo, _ts(2024, 3, 1, 15, 0)) < 24


def test_is_night_at_known_instant() -> None:
    at = _ts(2024, 3, 1, 15, 0)  # 00:00 Tokyo, 15:00 London, 07:00 San Francisco
    assert geo.is_night(geo.location_for("tokyo"), at)
    assert not geo.is_night(geo.location_for("london"), at)
    assert not geo.is_night(geo.location_for("san-francisco"), at)
    assert geo.is_night(geo.location_for("san-francisco"), _ts(2024, 3, 1, 13, 0))  # 05:00


def test_unknown_time_zone_is_config_error() -> None:
    with pytest.raises(ConfigError, match="IANA"):
        geo.utc_offset_hours("Mars/Olympus_Mons", 0.0)


def test_region_patterns() -> None:
    dublin = geo.location_for("eu-west-1")
    belgium = geo.location_for("europe-west1")
    virginia = geo.location_for("us-east-1")
    assert geo.region_matches(dublin, "eu-west-1")
    assert geo.region_matches(dublin, "EU-*")
    assert not geo.region_matches(belgium, "eu-*")
    assert geo.region_matches(belgium, "europe-*")
    assert geo.region_matches(belgium, "europe") and geo.region_matches(dublin, "europe")
    assert geo.region_matches(virginia, "us-*") and geo.region_matches(virginia, "americas")
    assert not geo.region_matches(virginia, "us-east-2")
    assert not geo.region_matches(virginia, "asia-pacific")


def test_on_prem_is_configurable() -> None:
    default = geo.location_for("on-prem")
    assert default.region == "on-prem" and default.timezone == "America/New_York"
    try:
        moved = geo.set_on_prem("frankfurt")
        assert geo.location_for("ON-PREM") == moved
        assert moved.region == "on-prem" and moved.timezone == "Europe/Berlin"
        custom = Location(region="x", city="Lab", lat=10.0, lon=20.0, timezone="UTC")
        assert geo.set_on_prem(custom).lat == 10.0
    finally:
        geo.set_on_prem(geo.REGIONS["on-prem"])
    assert geo.location_for("on-prem") == default
