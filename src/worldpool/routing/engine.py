"""The router: filter the pool, score the feasible workers, rank, explain.

``Router(policy).decide(ctx, pool)`` works on whole numpy columns:

1. every filter yields, per reason code, the rows failing it; a worker is feasible when
   it fails none. Exclusions are counted per ``plugin:code`` (each excluded worker once,
   under the first filter in policy order and its first code);
2. every applicable scorer (``score`` not None, weight > 0) scores the feasible rows;
   scores are clipped to [0, 1] (NaN → 0) and combined as ``Σ w·s / Σ w`` over the
   scorers that applied, so an optional scorer that does not apply to a task neither
   helps nor hurts anyone;
3. rows are ranked by total, ties broken by worker id; workers in ``ctx.avoid_workers``
   (earlier failed attempts) rank after every other feasible worker;
4. only the top ``report_candidates_max`` are turned into reports; plugin ``verdict()``
   is called only for the workers listed, never per worker of a large pool.

``decide(ctx, pool, explain=False)`` is the dispatch hot path: no pass over the pool.
:meth:`Router.feasible_rows` starts from the smallest candidate set a filter's index
offers (the workers running the handler, in the allowed regions, ...) and asks each
filter about the rows still in only (``check_rows``), capacity last; the feasible rows,
scores, winner and runner-up are those of the full pass. Only the winner and runner-up
are reported, no rejected candidate is looked at, exclusions are not counted
(``excluded_by`` is empty) and no diagnosis is made when nobody fits (only, when every
fitting worker is busy, one line starting with :data:`WAITING_FOR_SLOT`);
``explained`` is False on such a decision. ``explain=True`` (the default) runs every
filter over every worker and gives the full report: what the dispatcher records for a
task that waits or fails, and what is asked on demand.

Every feasible worker is scored (``sampled`` is always False).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from worldpool.errors import ConfigError
from worldpool.models import AffinityMode, CandidateReport, RoutingDecision, Verdict
from worldpool.routing.diagnose import Diagnosis, diagnose
from worldpool.routing.filters.capacity import CapacityFilter
from worldpool.routing.hooks import FilterHooks, ScorerHooks
from worldpool.routing.interface import Filter, Mask, RoutingContext, Rows, Scorer, Scores, ok
from worldpool.routing.passes import FilterPass as FilterPass
from worldpool.routing.passes import attribute, blocking, nearest_misses
from worldpool.routing.policy import RoutingPolicy
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.registry import FILTERS, SCORERS
from worldpool.routing.walk import CAPACITY, LeanWalk
from worldpool.unchecked import construct

WAITING_FOR_SLOT = "waiting for a free slot"  # a lean decision's reason when only slots block
KEPT_FOR_INTERACTIVE = "keep their last free slots for interactive work"  # ... and the reserve
_REPORT_FIELDS = frozenset(CandidateReport.model_fields)
_DECISION_FIELDS = frozenset(RoutingDecision.model_fields)
_MISS_FIELDS = frozenset({"worker_id", "region", "feasible", "verdicts"})
_ARGMAX_K = 4  # up to this k, k arg-max passes beat a partition


@dataclass(slots=True)
class Scored:
    """Scores of a set of rows."""

    rows: Rows
    per_scorer: dict[str, Scores]
    weights: dict[str, float]
    totals: Scores


class Router:
    """Turns a task and a pool snapshot into a ranked, explained RoutingDecision."""

    def __init__(self, policy: RoutingPolicy | None = None) -> None:
        self.policy = policy or RoutingPolicy()
        self.filters: list[Filter] = [FILTERS.create(n, self.policy) for n in self.policy.filters]
        self.scorers: list[tuple[Scorer, float]] = [
            (SCORERS.create(n, self.policy), self.policy.weight(n))
            for n in self.policy.scorers
            if self.policy.weight(n) > 0
        ]
        # Optional extension points, looked up once (see routing/interface.py).
        self.filter_hooks = [FilterHooks.of(f) for f in self.filters]
        self.scorer_hooks = [ScorerHooks.of(s, w) for s, w in self.scorers]
        self._ok = [ok(f.name) for f in self.filters]
        self._lean = LeanWalk(self.filter_hooks)

    # ------------------------------------------------------------------ filter / score

    def run_filters(self, ctx: RoutingContext, pool: PoolSnapshot) -> list[FilterPass]:
        passes = []
        n = len(pool)
        for hooks in self.filter_hooks:
            failures, mask = hooks.check(ctx, pool)
            if mask.shape != (n,):
                raise ConfigError(
                    f"filter {hooks.name!r} returned a mask of shape {mask.shape} for a pool "
                    f"of {n} workers; a mask needs one bool per pool row"
                )
            passes.append(FilterPass(hooks, failures, mask))
        return passes

    def score_rows(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scored:
        per_scorer: dict[str, Scores] = {}
        weights: dict[str, float] = {}
        totals: Scores | None = None  # the first weighted scores start it (0 + x is x)
        overrides = ctx.task.weights  # per-task weights (e.g. "cheapest idle" for a review)
        if len(rows):
            for scorer in self.scorer_hooks:
                weight = overrides.get(scorer.name, scorer.weight) if overrides else scorer.weight
                if weight <= 0:
                    continue
                raw = scorer.score(ctx, pool, rows)
                if raw is None:
                    continue
                scores = np.asarray(raw, np.float64)
                if not scorer.bounded:
                    # fmax maps NaN to 0 (it ignores NaN), fmin then caps at 1.
                    scores = np.fmin(np.fmax(scores, 0.0), 1.0)
                if scores.shape != rows.shape:
                    raise ConfigError(
                        f"scorer {scorer.name!r} returned {scores.shape} scores for "
                        f"{len(rows)} rows; return one score per row"
                    )
                per_scorer[scorer.name] = scores
                weights[scorer.name] = weight
                if totals is None:
                    totals = scores.copy() if weight == 1.0 else weight * scores
                elif weight == 1.0:
                    totals += scores
                else:
                    totals += weight * scores
        if totals is None:
            return Scored(rows, per_scorer, weights, np.zeros(len(rows), dtype=np.float64))
        totals /= sum(weights.values())
        return Scored(rows, per_scorer, weights, totals)

    def rank(self, ctx: RoutingContext, pool: PoolSnapshot, scored: Scored, k: int) -> Rows:
        """Positions (into ``scored.rows``) of the best ``k``, best first."""
        m = len(scored.rows)
        if m == 0:
            return np.empty(0, dtype=np.intp)
        key = scored.totals
        if ctx.avoid_workers:
            key = key - 2.0 * np.isin(scored.rows, pool.rows_of(ctx.avoid_workers))
        # Beyond k rows: the k-th best value, then every row at least as good, so that
        # ties are broken by worker id and never by the selection's arbitrary order.
        near = self.policy.near_tie
        shuffled = False
        if near > 0 and m > 1:
            # Herding protection: every row within ``near`` of the best counts as tied
            # with it, and ties are broken by a hash of (task, worker), so decisions for
            # different tasks on one snapshot (several replicas, a stale view) spread.
            best = float(key.max())
            tied = (key >= best - near).nonzero()[0]
            if len(tied) >= k and len(tied) > 1:
                # The best k are all tied rows, in hash order: the hashes are distinct
                # (a bijection of distinct id ranks), so the k smallest are those a
                # sort of every tied row by (total, hash) puts first.
                hashed = _task_shuffled(pool.id_rank[scored.rows[tied]], ctx.task.id)
                if len(tied) > k:
                    first = np.argpartition(hashed, k - 1)[:k]
                    return tied[first[np.argsort(hashed[first])]]
                return tied[np.argsort(hashed)]
            if len(tied) > 1:
                key = np.where(key >= best - near, best, key)
                shuffled = True
        pick = np.flatnonzero(key >= _kth_largest(key, k)) if m > k else np.arange(m)
        tie_rank: npt.NDArray[np.integer[Any]] = pool.id_rank[scored.rows[pick]]
        if shuffled:  # hashed for the picked rows only, never for the whole pool
            tie_rank = _task_shuffled(tie_rank, ctx.task.id)
        order = np.lexsort((tie_rank, -key[pick]))
        result: Rows = pick[order][:k]
        return result

    # ------------------------------------------------------------------ decide

    def decide(
        self, ctx: RoutingContext, pool: PoolSnapshot, *, explain: bool = True
    ) -> RoutingDecision:
        """Rank ``pool`` for ``ctx.task``; see the module doc for the method and for
        ``explain``."""
        started = time.perf_counter()
        pool.refresh()
        n = len(pool)
        busy = 0
        if explain:
            passes = self.run_filters(ctx, pool)
            excluded_by, first_filter, feasible = attribute(passes, n)
            rows = np.flatnonzero(feasible)
        else:  # who excluded whom is the explanation's business, not the hot path's
            passes, excluded_by, first_filter, feasible = [], {}, [], None
            rows, busy = self.feasible_rows(ctx, pool)
        scored = self.score_rows(ctx, pool, rows)
        k = self.policy.report_candidates_max
        top = self.rank(ctx, pool, scored, max(k, 2) if explain else 2)

        winner = runner_up = suggestion = None
        reasons: list[str] = []
        blocked: Callable[[int], list[FilterHooks]] = (
            (lambda row: blocking(passes, row))
            if explain
            else (lambda row: self._blocking(ctx, pool, row))
        )
        wait_reason = self._affinity_wait(ctx, pool, blocked)
        if wait_reason is not None:
            reasons = [wait_reason]
        elif len(top):
            ranked = [pool.ids[int(scored.rows[i])] for i in top[:2]]
            winner, runner_up = ranked[0], (ranked[1] if len(ranked) > 1 else None)
        elif explain:
            found: Diagnosis = diagnose(self, ctx, pool, passes, first_filter)
            reasons, suggestion = found.reasons, found.suggestion
        elif busy:  # a backlog, not a misfit: one cheap line, no diagnosis
            noun = "worker fits" if busy == 1 else "workers fit"
            reasons = [f"{WAITING_FOR_SLOT}: {busy} {noun} but all are busy{self._kept_back(ctx)}"]
        if feasible is None:  # lean: the winner and runner-up only, no rejected candidate
            candidates = self._reports(ctx, pool, passes, feasible, scored, top[:2])
        else:
            candidates = self._reports(ctx, pool, passes, feasible, scored, top[:k])
        # Built once, unvalidated: every field was computed above from validated inputs
        # (assigning fields one by one would re-validate each time).
        values = {
            "task_id": ctx.task.id,
            "winner": winner,
            "runner_up": runner_up,
            "weights": scored.weights or {s.name: w for s, w in self.scorers},
            "candidates": candidates,
            "pool_size": n,
            "feasible_count": len(rows),
            "excluded_by": excluded_by,
            "omitted_candidates": n - len(candidates),
            "sampled": False,
            "reasons": reasons,
            "suggestion": suggestion,
            "waiting_for_affinity": wait_reason is not None,
            "decided_at": ctx.now,
            "duration_us": (time.perf_counter() - started) * 1e6,
            "explained": explain,
        }
        return construct(RoutingDecision, _DECISION_FIELDS, values)

    def feasible_rows(self, ctx: RoutingContext, pool: PoolSnapshot) -> tuple[Rows, int]:
        """The feasible rows (ascending, as ``flatnonzero`` of the full pass gives them)
        without a pass over the pool, and how many rows pass every filter but capacity
        (:class:`~worldpool.routing.walk.LeanWalk`)."""
        return self._lean.rows(ctx, pool)

    def _kept_back(self, ctx: RoutingContext) -> str:
        """What a lean backlog line adds when the interactive reserve applies to the task."""
        for f in self.filters:
            if isinstance(f, CapacityFilter) and f.keeps_back(ctx):
                return f" or {KEPT_FOR_INTERACTIVE} ({f.setting})"
        return ""

    def _blocking(self, ctx: RoutingContext, pool: PoolSnapshot, row: int) -> list[FilterHooks]:
        """The filters that fail pool row ``row`` (asked about that row alone)."""
        one = np.array([row], dtype=np.intp)
        return [h for h in self.filter_hooks if not bool(h.check_rows(ctx, pool, one)[0])]

    def _affinity_wait(
        self, ctx: RoutingContext, pool: PoolSnapshot, blocked: Callable[[int], list[FilterHooks]]
    ) -> str | None:
        """A reason to hold the task for its soft-affinity worker, or None to route now."""
        affinity = ctx.task.affinity
        target = ctx.affinity_worker
        if (
            affinity is None
            or affinity.mode is not AffinityMode.SOFT
            or target is None
            or target not in pool
            or target in ctx.avoid_workers
            or ctx.waited_s >= affinity.wait_s
        ):
            return None
        row = pool.row_of(target)
        blocking = blocked(row)  # none: it is feasible
        if [h.name for h in blocking] != [CAPACITY]:
            return None
        why = blocking[0].verdict(ctx, pool.workers[row]).reason
        return (
            f"waiting for {target}, which keeps affinity {affinity.key!r} warm but {why}; "
            f"waited {ctx.waited_s:.1f} s of {affinity.wait_s:g} s, then the best "
            "equivalent worker takes it"
        )

    def _reports(
        self,
        ctx: RoutingContext,
        pool: PoolSnapshot,
        passes: list[FilterPass],
        feasible: Mask | None,
        scored: Scored,
        top: Rows,
    ) -> list[CandidateReport]:
        """Top feasible workers, then (given the full pass's ``feasible``) the nearest
        misses while the report has room."""
        workers, ids, regions = pool.workers, pool.ids, pool.regions  # refreshed columns
        names = list(scored.per_scorer)
        rows_np = scored.rows[top]
        # One tuple of scores per listed row (in ``names`` order); () when none applied.
        per_row: Iterable[tuple[float, ...]] = repeat(())
        if names:
            per_row = zip(*(scored.per_scorer[name][top].tolist() for name in names), strict=True)
        region_of = pool.region_index[rows_np].tolist()
        totals = scored.totals[top].tolist()
        reports = []
        ok_verdicts = self._ok
        explainers = [
            (h.name, h.detail)
            for h in self.scorer_hooks
            if h.detail is not None and h.name in scored.per_scorer
        ]
        for i, (row, row_scores) in enumerate(zip(rows_np.tolist(), per_row, strict=False)):
            details = {}
            for name, explain in explainers:
                said = explain(ctx, pool, row)
                if said:
                    details[name] = said
            # construct (no validation): every value is ours and already typed;
            # validating 25 reports per decision would cost more than the decision.
            values = {
                "worker_id": ids[row],
                "region": regions[region_of[i]],
                "feasible": True,
                "verdicts": list(ok_verdicts),
                "scores": dict(zip(names, row_scores, strict=True)),
                "total": totals[i],
                "details": details,
            }
            reports.append(construct(CandidateReport, _REPORT_FIELDS, values))
        room = self.policy.report_candidates_max - len(reports)
        if feasible is None or room <= 0 or bool(feasible.all()):
            return reports
        for row in nearest_misses(passes, feasible, pool.id_rank, room).tolist():
            worker = workers[row]
            # Ask a plugin only where its mask failed: passing ones get the shared ok.
            verdicts = [
                p.hooks.verdict_at(ctx, pool, row) if not p.mask[row] else okay
                for p, okay in zip(passes, self._ok, strict=True)
            ]
            reports.append(
                construct(
                    CandidateReport,
                    _MISS_FIELDS,
                    {
                        "worker_id": worker.id,
                        "region": worker.profile.location.region,
                        "feasible": False,
                        "verdicts": _failing_first(verdicts),
                        "scores": {},
                        "total": 0.0,
                        "details": {},
                    },
                )
            )
        return reports


def _task_shuffled(id_rank: npt.NDArray[np.integer[Any]], task_id: str) -> npt.NDArray[np.uint64]:
    """A per-task pseudo-random order of the rows (same task, same order: reproducible)."""
    # splitmix64 of (row rank, task); array arithmetic wraps mod 2**64 silently.
    seed = np.uint64(((zlib.crc32(task_id.encode()) | 1) * 0xBF58476D1CE4E5B9) % 2**64)
    x = (id_rank.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    x ^= seed
    x ^= x >> np.uint64(31)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(29)
    return x


def _kth_largest(values: Scores, k: int) -> float:
    """The k-th largest value (1-based, k < len): k arg-max passes when k is small."""
    if k > _ARGMAX_K:
        return float(np.partition(values, len(values) - k)[len(values) - k])
    best = float(values.max())
    if k == 1:
        return best
    rest = values.copy()
    for _ in range(k - 1):
        i = int(rest.argmax())
        rest[i] = -np.inf
    return float(rest.max())


def _failing_first(verdicts: Sequence[Verdict]) -> list[Verdict]:
    return sorted(verdicts, key=lambda v: v.ok)
