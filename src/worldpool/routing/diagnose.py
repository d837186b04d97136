"""Why a task cannot be placed, and the smallest change that would place it.

Generic over filters: for each filter F, if the other filters alone would leave some
workers, F by itself blocks them, and relaxing F is a one-step fix. The fix that is
cheapest to make wins: waiting for a slot (capacity) first, then the filter whose removal
would free the most workers. Its message names the nearest such worker (fewest failing
reason codes of that filter, then best score) and that filter's reason for it, e.g.
"relax the hardware requirements: dgx-london-02 passes every other filter but has 40 GB
VRAM, task needs 80 GB". Failing that, pairs of filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from worldpool.routing.interface import Mask, RoutingContext, Rows
from worldpool.routing.pool import PoolSnapshot

if TYPE_CHECKING:
    from worldpool.routing.engine import FilterPass, Router

CAPACITY = "capacity"
RESERVED = "reserved"  # capacity's code for slots kept for interactive work


@dataclass(slots=True)
class Diagnosis:
    reasons: list[str]
    suggestion: str | None


def diagnose(
    router: Router,
    ctx: RoutingContext,
    pool: PoolSnapshot,
    passes: list[FilterPass],
    first_filter: list[Mask],
) -> Diagnosis:
    """Reasons (headline first, then one line per excluding filter) and a suggestion."""
    if len(pool) == 0:
        return Diagnosis(
            ["no workers are registered"],
            "start a worker (`worldpool worker`) or add workers to the pool",
        )
    unoffered = not pool.handlers.has_all((ctx.task.handler,)).any()
    reasons = [_headline(ctx, passes, first_filter)]
    for p, first in zip(passes, first_filter, strict=True):
        count = int(np.count_nonzero(first))
        if count:
            row = _lowest_id(pool, np.flatnonzero(first))
            worker = pool.workers[row]
            why = p.hooks.verdict(ctx, worker).reason
            noun = "worker" if count == 1 else "workers"
            reasons.append(f"{count} {noun} excluded by {p.hooks.name}: e.g. {worker.id} {why}")
    if unoffered:  # said plainly first, not as one relaxation among others
        missing = f"no worker offers handler {ctx.task.handler!r}"
        return Diagnosis(
            [missing, *reasons],
            f"{missing}: start one that does (`worldpool worker --handlers module:HANDLERS`)",
        )
    return Diagnosis(reasons, _suggest(router, ctx, pool, passes))


def _headline(ctx: RoutingContext, passes: list[FilterPass], first_filter: list[Mask]) -> str:
    # Every requirement that rules anyone out, so the headline states the whole conflict
    # ("has capability X and is in region Y"), except transient ones (a busy slot) that
    # matter only when they are what finally blocks the task.
    phrases = []
    for p, first in zip(passes, first_filter, strict=True):
        relevant = first if p.hooks.transient else None
        codes = {
            code
            for code, failing in p.failures.items()
            if (failing if relevant is None else failing & relevant).any()
        }
        if not codes:
            continue
        phrase = p.hooks.describe(ctx, codes)
        if phrase:
            phrases.append(phrase)
    if not phrases:
        return "no online worker can take this task"
    if len(phrases) > 1:
        phrases = [", ".join(phrases[:-1]), phrases[-1]]
    return "no online worker " + " and ".join(phrases)


def _suggest(
    router: Router, ctx: RoutingContext, pool: PoolSnapshot, passes: list[FilterPass]
) -> str:
    for size in (1, 2):
        options = []
        for relaxed in combinations(range(len(passes)), size):
            rest = np.ones(len(pool), dtype=np.bool_)
            for i, p in enumerate(passes):
                if i not in relaxed:
                    rest &= p.mask
            count = int(np.count_nonzero(rest))
            if count:
                waits = any(passes[i].hooks.name == CAPACITY for i in relaxed)
                options.append((not waits, -count, relaxed, rest))
        if options:
            _, neg_count, relaxed, rest = min(options, key=lambda o: o[:3])
            chosen = [passes[i] for i in relaxed]
            return _phrase(router, ctx, pool, chosen, _nearest(chosen, rest), -neg_count)
    return (
        "no worker comes close: relaxing any two constraints still leaves none; "
        "add workers that match the task or loosen its requirements"
    )


def _nearest(relaxed: list[FilterPass], rest: Mask) -> Rows:
    """Rows of ``rest`` that fail the fewest reason codes of the relaxed filters."""
    rows = np.flatnonzero(rest)
    misses = np.zeros(len(rows), dtype=np.int64)
    for p in relaxed:
        for failing in p.failures.values():
            misses += failing[rows]
    nearest: Rows = rows[misses == misses.min()]
    return nearest


def _phrase(
    router: Router,
    ctx: RoutingContext,
    pool: PoolSnapshot,
    passes: list[FilterPass],
    rows: Rows,
    count: int,
) -> str:
    relaxed = [p.hooks for p in passes]
    scored = router.score_rows(ctx, pool, rows)
    best = pool.workers[int(rows[router.rank(ctx, pool, scored, 1)[0]])]
    whys = " and ".join(f.verdict(ctx, best).reason for f in relaxed)
    if [f.name for f in relaxed] == [CAPACITY]:
        noun = "worker fits" if count == 1 else "workers fit"
        kept = passes[0].failures.get(RESERVED)
        if kept is not None and bool(kept[rows].any()):  # the interactive reserve holds it
            return (
                f"wait for a free slot: {count} {noun} but all are busy or keep their last "
                f"free slots for interactive work (best: {best.id}, which {whys}); a smaller "
                "interactive reserve would let it take them"
            )
        return (
            f"wait for a free slot: {count} {noun} but all are busy (best: {best.id}, which {whys})"
        )
    remedy = " and ".join(f.remedy for f in relaxed)
    return f"{remedy}: {best.id} passes every other filter but {whys}"


def _lowest_id(pool: PoolSnapshot, rows: Rows) -> int:
    return int(rows[np.argmin(pool.id_rank[rows])])
