"""The routing plugin contract (Kubernetes-scheduler style, scaled down).

A plugin has a ``name`` and implements only the extension points it needs:

* a :class:`Filter` removes workers that cannot run the task. It works on the whole pool
  at once (a boolean mask over the :class:`~worldpool.routing.pool.PoolSnapshot` columns,
  so a 10,000-worker pool is filtered in microseconds) and can explain any single worker
  with a :class:`~worldpool.models.Verdict` (a code and a human reason);
* a :class:`Scorer` ranks the feasible workers, returning one score in ``[0, 1]`` per row,
  or ``None`` when it does not apply to this task (its weight is then left out).

Those are required. Each optional extension point below is one small runtime-checkable
Protocol; a plugin that has the member takes part, one that lacks it gets the engine's
default. The engine looks them up once, when the :class:`~worldpool.routing.Router` is
built (:mod:`worldpool.routing.hooks`), never per decision.

Filters:

* :class:`FilterFailures` (``failures``): failing rows per reason code, so exclusions are
  counted per ``plugin:code``; default: one code, ``excluded``, for rows ``mask`` rejects;
* :class:`FilterCheck` (``check``): failures and mask in one call, free to cache; takes
  precedence over ``failures`` and ``mask``;
* :class:`FilterRows` (``check_rows``): the passing flags of some rows only, so the hot
  path pays for the workers it looks at, not for the pool; default: the ``check`` mask
  at those rows (a pass over the whole pool);
* :class:`FilterCandidates` (``candidates``): a superset of the passing rows read from an
  index (the workers running the task's handler, those in its regions, its pinned
  worker), so a decision starts from those instead of every worker; default: none;
* :class:`FilterCachedVerdict` (``cached_verdict``): ``verdict`` for a pool row, free to
  cache; default: ``verdict`` of that row's worker;
* :class:`FilterDescribe` (``describe``): the phrase an unschedulable headline uses for
  this filter ("no online worker <phrase>"); default: "passes <name>";
* :class:`FilterRemedy` (``remedy``): what the suggestion asks for when this filter alone
  blocks ("relax the hardware requirements"); default: "relax <name>";
* :class:`FilterTransient` (``transient``): exclusions come and go with load (capacity),
  so they are left out of the headline unless they finally block; default: False.

Scorers:

* :class:`ScorerBounded` (``bounded``): True promises finite scores in ``[0, 1]``, so the
  engine skips its clip; default: False (scores are clipped, NaN counts as 0);
* :class:`ScorerDetail` (``detail``): the inputs behind one listed row's score, in words
  ("H100 at 95 tokens/s"), kept in ``CandidateReport.details``; default: none.

The engine (``engine.py``) clips, weights and combines scores in one place. Every plugin
call gets one input object, :class:`RoutingContext`, so fields can be added without
breaking plugins. :class:`worldpool.routing.filters.base.ColumnFilter` implements every
filter extension point for the built-ins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from worldpool.models import Location, TaskSpec, Verdict, Worker
from worldpool.routing.bits import Mask as Mask  # re-exported: plugins take it from here

if TYPE_CHECKING:
    from worldpool.routing.pool import PoolSnapshot

Rows = npt.NDArray[np.intp]
Scores = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """Everything a plugin may look at besides the pool."""

    task: TaskSpec
    now: float  # epoch seconds (the simulator passes its virtual clock)
    user_location: Location | None = None  # resolved from task.user_location
    orchestrator_location: Location | None = None
    affinity_worker: str | None = None  # the worker holding task.affinity.key, if any
    waited_s: float = 0.0  # how long the task has been pending (soft-affinity wait budget)
    avoid_workers: frozenset[str] = frozenset()  # prefer others (earlier failed attempts)
    artifact_holders: Mapping[str, frozenset[str]] = field(default_factory=dict)  # digest->ids
    heartbeat_timeout_s: float = 3.0  # a heartbeat older than this is stale


@runtime_checkable
class Filter(Protocol):
    """A hard constraint. Every filter must pass for a worker to be feasible."""

    name: str

    def mask(self, ctx: RoutingContext, pool: PoolSnapshot) -> Mask:
        """True for rows of ``pool`` that pass."""
        ...

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        """The same decision for one worker, with a code and a reason when it fails."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """A soft preference: higher is better, bounded to ``[0, 1]``."""

    name: str

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        """Scores for ``rows`` (indices into ``pool``), or None if not applicable."""
        ...


# ---------------------------------------------------------------------- optional: filters


@runtime_checkable
class FilterFailures(Protocol):
    """Failing rows per reason code (``excluded_by`` counts ``plugin:code``)."""

    def failures(self, ctx: RoutingContext, pool: PoolSnapshot) -> dict[str, Mask]:
        """Code -> rows failing for that reason, in the order codes are attributed. A row
        passes when it fails no code. Codes that fail no row may be left out."""
        ...


@runtime_checkable
class FilterCheck(Protocol):
    """Failures and the passing mask in one call (what the engine calls when present)."""

    def check(self, ctx: RoutingContext, pool: PoolSnapshot) -> tuple[dict[str, Mask], Mask]:
        """``(failures, passing)`` as :meth:`FilterFailures.failures` and
        :meth:`Filter.mask` would give them. The arrays may be cached and shared
        between decisions; the engine never writes to them."""
        ...


@runtime_checkable
class FilterRows(Protocol):
    """The passing flags of some rows only (the lean decision's filter pass)."""

    def check_rows(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Mask:
        """One flag per entry of ``rows``: the ``check`` mask at those rows, computed
        from those rows alone."""
        ...


@runtime_checkable
class FilterCandidates(Protocol):
    """A superset of the passing rows, read from an index."""

    def candidates(self, ctx: RoutingContext, pool: PoolSnapshot) -> Rows | None:
        """Ascending rows that include every row this filter passes (more are allowed,
        fewer never), or None when no index narrows the pool for this task."""
        ...


@runtime_checkable
class FilterCachedVerdict(Protocol):
    """A verdict for a pool row, which the filter may cache (near-miss reports)."""

    def cached_verdict(self, ctx: RoutingContext, pool: PoolSnapshot, row: int) -> Verdict:
        """The same as ``verdict(ctx, pool.workers[row])``."""
        ...


@runtime_checkable
class FilterDescribe(Protocol):
    """What the filter asks for, in words, for an unschedulable task's headline."""

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        """A phrase for "no online worker <phrase>" given the failing ``codes``
        ("has capability browser_operations"), or None to say nothing."""
        ...


@runtime_checkable
class FilterRemedy(Protocol):
    """The fix an unschedulable suggestion names when this filter alone blocks."""

    remedy: str  # e.g. "relax the hardware requirements"; "" means "relax <name>"


@runtime_checkable
class FilterTransient(Protocol):
    """Whether exclusions come and go with load (capacity) rather than with profiles."""

    transient: bool  # True: left out of the headline unless they are what finally blocks


# ---------------------------------------------------------------------- optional: scorers


@runtime_checkable
class ScorerBounded(Protocol):
    """A promise that scores are already finite and in ``[0, 1]``."""

    bounded: bool  # True: the engine skips its clip


@runtime_checkable
class ScorerDetail(Protocol):
    """The inputs behind a listed worker's score, in words (decision explanations)."""

    def detail(self, ctx: RoutingContext, pool: PoolSnapshot, row: int) -> str | None:
        """E.g. "H100 at 95 tokens/s, $0.0011 per 1k tokens"; None to say nothing.
        Called only for the rows a decision lists, never per worker of the pool."""
        ...


# ---------------------------------------------------------------------- helpers


def passing(failures: Iterable[Mask], n: int) -> Mask:
    """Rows (of ``n``) that fail none of the ``failures`` masks."""
    mask = np.ones(n, dtype=np.bool_)
    for failing in failures:
        mask &= ~failing
    return mask


def ok(plugin: str) -> Verdict:
    return Verdict(plugin=plugin, ok=True)


def excluded(plugin: str, code: str, reason: str) -> Verdict:
    return Verdict(plugin=plugin, ok=False, code=code, reason=reason)
