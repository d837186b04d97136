"""region: placement constraints — allowed regions, excluded regions, required labels.

``requirements.regions`` is an allow-list of region codes, glob patterns (``eu-*``) or
macro-regions (``europe``), matched by :func:`worldpool.geo.region_matches`;
``exclude_regions`` removes matches; ``requirements.labels`` must all be present with
equal values. Codes: ``region_not_allowed``, ``region_excluded``, ``label_mismatch``.
Each pattern is evaluated once per distinct region and cached until profiles change, so
a new combination of known patterns costs a few array ORs.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from worldpool import geo
from worldpool.models import Location, Verdict, Worker
from worldpool.routing.filters.base import ColumnFilter, join
from worldpool.routing.interface import Mask, RoutingContext, Rows, excluded, ok
from worldpool.routing.pool import PoolSnapshot, label_pairs


def _matches_any(loc: Location, patterns: tuple[str, ...]) -> bool:
    return any(geo.region_matches(loc, p) for p in patterns)


def _per_region(pool: PoolSnapshot, patterns: tuple[str, ...]) -> Mask:
    """Which distinct regions of the pool match any of ``patterns``."""
    per_region = np.zeros(len(pool.regions), dtype=np.bool_)
    for pattern in patterns:  # one cached answer per pattern: new sets of known
        per_region |= _pattern_regions(pool, pattern)  # patterns cost no geo lookups
    return per_region


def _region_mask(pool: PoolSnapshot, patterns: tuple[str, ...], rows: Rows | None) -> Mask:
    if rows is not None:
        flags: Mask = _per_region(pool, patterns)[pool.region_index[rows]]
        return flags

    def compute() -> Mask:
        return np.asarray(_per_region(pool, patterns)[pool.region_index], dtype=np.bool_)

    result: Mask = pool.memo(("region", patterns), compute)
    return result


def _pattern_regions(pool: PoolSnapshot, pattern: str) -> Mask:
    """Which distinct regions of the pool ``pattern`` matches (cached with the pool)."""

    def compute() -> Mask:
        return np.array(
            [geo.region_matches(loc, pattern) for loc in pool.region_locations], dtype=np.bool_
        )

    result: Mask = pool.memo(("region-pattern", pattern), compute)
    return result


class RegionFilter(ColumnFilter):
    name = "region"
    remedy = "widen the region constraints"

    def static_key(self, ctx: RoutingContext) -> Hashable | None:
        req = ctx.task.requirements
        return (tuple(req.regions), tuple(req.exclude_regions), tuple(sorted(req.labels.items())))

    def failures_at(
        self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows | None
    ) -> dict[str, Mask]:
        req = ctx.task.requirements
        out: dict[str, Mask] = {}
        if req.regions:
            out["region_not_allowed"] = ~_region_mask(pool, tuple(req.regions), rows)
        if req.exclude_regions:
            out["region_excluded"] = _region_mask(pool, tuple(req.exclude_regions), rows)
        if req.labels:
            out["label_mismatch"] = ~pool.labels.has_all(label_pairs(req.labels), rows)
        return out

    def candidates(self, ctx: RoutingContext, pool: PoolSnapshot) -> Rows | None:
        """The workers in the allowed regions (from the pool's region index), or those
        with the rarest required label if fewer."""
        req = ctx.task.requirements
        best: Rows | None = None
        if req.regions:
            best = pool.rows_in_regions(_per_region(pool, tuple(req.regions)))
        for pair in label_pairs(req.labels):
            held = pool.labels.rows_with(pair)
            if best is None or len(held) < len(best):
                best = held
        return best

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        req = ctx.task.requirements
        loc = worker.profile.location
        if req.regions and not _matches_any(loc, tuple(req.regions)):
            return excluded(
                self.name,
                "region_not_allowed",
                f"is in region {loc.region}, outside the allowed {', '.join(req.regions)}",
            )
        if req.exclude_regions and _matches_any(loc, tuple(req.exclude_regions)):
            return excluded(
                self.name,
                "region_excluded",
                f"is in region {loc.region}, which is excluded ({', '.join(req.exclude_regions)})",
            )
        missing = label_pairs(req.labels) - label_pairs(worker.profile.labels)
        if missing:
            have = join(label_pairs(worker.profile.labels))
            why = f"lacks labels {join(missing)} (has {have})"
            return excluded(self.name, "label_mismatch", why)
        return ok(self.name)

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        req = ctx.task.requirements
        parts = []
        if "region_not_allowed" in codes:
            parts.append(f"is in region {' or '.join(req.regions)}")
        if "region_excluded" in codes:
            parts.append(f"is outside {', '.join(req.exclude_regions)}")
        if "label_mismatch" in codes:
            parts.append(f"has labels {join(label_pairs(req.labels))}")
        return " and ".join(parts) or None
