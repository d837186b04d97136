"""The routing plugin contract (Kubernetes-scheduler style, scaled down).

A plugin has a ``name`` and implements only the extension point it needs:

* a :class:`Filter` removes workers that cannot run the task. It works on the whole pool
  at once (a boolean mask over the :class:`~worldpool.routing.pool.PoolSnapshot` columns,
  so a 10,000-worker pool is filtered in microseconds) and can explain any single worker
  with a :class:`~worldpool.models.Verdict` (a code and a human reason);
* a :class:`Scorer` ranks the feasible workers, returning one score in ``[0, 1]`` per row,
  or ``None`` when it does not apply to this task (its weight is then left out).

The engine (``engine.py``) clips, weights and combines scores in one place. Every plugin
call gets one input object, :class:`RoutingContext`, so fields can be added without
breaking plugins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from worldpool.models import Location, TaskSpec, Verdict, Worker

if TYPE_CHECKING:
    from worldpool.routing.pool import PoolSnapshot

Mask = npt.NDArray[np.bool_]
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


def ok(plugin: str) -> Verdict:
    return Verdict(plugin=plugin, ok=True)


def excluded(plugin: str, code: str, reason: str) -> Verdict:
    return Verdict(plugin=plugin, ok=False, code=code, reason=reason)
