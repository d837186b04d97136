"""A plugin's extension points, looked up once when the router is built.

:class:`FilterHooks` and :class:`ScorerHooks` hold, for one plugin, a callable or value
for every extension point of :mod:`worldpool.routing.interface`: the plugin's own where it
has one, the engine's default where it does not. The engine and the diagnosis call these
and never ask a plugin what it has while deciding.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from worldpool.errors import ConfigError
from worldpool.models import Verdict, Worker
from worldpool.routing.interface import (
    Filter,
    FilterCachedVerdict,
    FilterCandidates,
    FilterCheck,
    FilterDescribe,
    FilterFailures,
    FilterRemedy,
    FilterRows,
    FilterTransient,
    Mask,
    RoutingContext,
    Rows,
    Scorer,
    ScorerBounded,
    ScorerDetail,
    Scores,
    passing,
)

if TYPE_CHECKING:
    from worldpool.routing.pool import PoolSnapshot

Check = Callable[[RoutingContext, "PoolSnapshot"], tuple[dict[str, Mask], Mask]]
CheckRows = Callable[[RoutingContext, "PoolSnapshot", Rows], Mask]
Candidates = Callable[[RoutingContext, "PoolSnapshot"], Rows | None]
StaticKey = Callable[[RoutingContext], Hashable | None]
DEFAULT_CODE = "excluded"  # the one code of a filter without failures()


@dataclass(frozen=True, slots=True)
class FilterHooks:
    """Every extension point of one filter, resolved."""

    plugin: Filter
    name: str
    check: Check  # (failures per code, passing mask)
    check_rows: CheckRows  # passing flags of the given rows only
    candidates: Candidates | None  # a superset of the passing rows, from an index
    verdict: Callable[[RoutingContext, Worker], Verdict]
    verdict_at: Callable[[RoutingContext, PoolSnapshot, int], Verdict]  # by pool row
    describe: Callable[[RoutingContext, set[str]], str | None]
    remedy: str  # never empty: "relax <name>" by default
    transient: bool
    # The task fields a profile-only result depends on (ColumnFilter.static_key); None
    # from it, or no such method, means the result follows worker state.
    static_key: StaticKey | None = None

    @classmethod
    def of(cls, plugin: Filter) -> FilterHooks:
        name = plugin.name
        verdict = plugin.verdict
        check = _check_of(plugin)
        return cls(
            plugin=plugin,
            name=name,
            check=check,
            check_rows=_check_rows_of(plugin, check),
            candidates=plugin.candidates if isinstance(plugin, FilterCandidates) else None,
            verdict=verdict,
            verdict_at=(
                plugin.cached_verdict
                if isinstance(plugin, FilterCachedVerdict)
                else lambda ctx, pool, row: verdict(ctx, pool.workers[row])
            ),
            describe=(
                plugin.describe
                if isinstance(plugin, FilterDescribe)
                else lambda ctx, codes: f"passes {name}"
            ),
            remedy=(plugin.remedy if isinstance(plugin, FilterRemedy) else "") or f"relax {name}",
            transient=bool(plugin.transient) if isinstance(plugin, FilterTransient) else False,
            static_key=getattr(plugin, "static_key", None),
        )


def _check_of(plugin: Filter) -> Check:
    if isinstance(plugin, FilterCheck):
        return plugin.check
    if isinstance(plugin, FilterFailures):
        failures_of = plugin.failures

        def check_failures(ctx: RoutingContext, pool: PoolSnapshot) -> tuple[dict[str, Mask], Mask]:
            failures = failures_of(ctx, pool)
            return failures, passing(failures.values(), len(pool))

        return check_failures

    mask_of = plugin.mask

    def check_mask(ctx: RoutingContext, pool: PoolSnapshot) -> tuple[dict[str, Mask], Mask]:
        mask = np.asarray(mask_of(ctx, pool), dtype=np.bool_)
        return {DEFAULT_CODE: ~mask}, mask

    return check_mask


def _check_rows_of(plugin: Filter, check: Check) -> CheckRows:
    name = plugin.name
    if isinstance(plugin, FilterRows):
        own = plugin.check_rows

        def checked_rows(ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Mask:
            flags = np.asarray(own(ctx, pool, rows), dtype=np.bool_)
            if flags.shape != rows.shape:
                raise ConfigError(
                    f"filter {name!r} returned {flags.shape} flags from check_rows for "
                    f"{len(rows)} rows; return one bool per row asked about"
                )
            return flags

        return checked_rows

    def whole_pool(ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Mask:
        mask = check(ctx, pool)[1]
        if mask.shape != (len(pool),):
            raise ConfigError(
                f"filter {name!r} returned a mask of shape {mask.shape} for a pool "
                f"of {len(pool)} workers; a mask needs one bool per pool row"
            )
        flags: Mask = mask[rows]
        return flags

    return whole_pool


@dataclass(frozen=True, slots=True)
class ScorerHooks:
    """Every extension point of one scorer, resolved, with its policy weight."""

    plugin: Scorer
    name: str
    score: Callable[[RoutingContext, PoolSnapshot, Rows], Scores | None]
    weight: float
    bounded: bool  # skip the engine's clip
    detail: Callable[[RoutingContext, PoolSnapshot, int], str | None] | None = None

    @classmethod
    def of(cls, plugin: Scorer, weight: float) -> ScorerHooks:
        bounded = bool(plugin.bounded) if isinstance(plugin, ScorerBounded) else False
        detail = plugin.detail if isinstance(plugin, ScorerDetail) else None
        return cls(plugin, plugin.name, plugin.score, weight, bounded, detail)
