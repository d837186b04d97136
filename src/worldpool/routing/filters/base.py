"""Shared shape of the built-in filters: failing rows per reason code.

A built-in filter computes, per code, the rows that fail for that reason
(:meth:`ColumnFilter.failures`); :meth:`mask` is derived from it, and the engine uses the
per-code masks to count exclusions (``excluded_by``) without looking at single workers.
:meth:`verdict` explains one worker with the numbers. Third-party filters need only
``mask`` and ``verdict`` (see :class:`worldpool.routing.interface.Filter`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np

from worldpool.models import Verdict, Worker
from worldpool.routing.interface import Mask, RoutingContext
from worldpool.routing.pool import PoolSnapshot


class ColumnFilter(ABC):
    """Base for the built-in filters."""

    name: str = ""
    #: What the unschedulable suggestion asks for when this filter alone blocks.
    remedy: str = ""
    #: True if exclusions come and go with load (capacity): left out of the headline of
    #: an unschedulable task unless they are what finally blocks it.
    transient: bool = False

    @abstractmethod
    def failures(self, ctx: RoutingContext, pool: PoolSnapshot) -> dict[str, Mask]:
        """Code -> rows failing for that reason. Codes are checked in insertion order."""

    @abstractmethod
    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        """One worker's verdict, with a reason that names the numbers."""

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        """A phrase for "no online worker <phrase>" naming what the task asks, or None."""
        return None

    def mask(self, ctx: RoutingContext, pool: PoolSnapshot) -> Mask:
        passing = np.ones(len(pool), dtype=np.bool_)
        for failing in self.failures(ctx, pool).values():
            passing &= ~failing
        return passing


def join(names: Iterable[object]) -> str:
    """Sorted, comma-separated names for messages ("-" when empty)."""
    items = sorted(str(n) for n in names)
    return ", ".join(items) if items else "-"


def num(value: float) -> str:
    """A number as people write it: 80 not 80.0, 0.5 stays 0.5."""
    return f"{value:g}"
