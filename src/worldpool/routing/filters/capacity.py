"""capacity: the worker has a free task slot (``running < max_concurrency``).

Code: ``full``. A task blocked only by this filter waits for a slot; it is not
unplaceable.
"""

from __future__ import annotations

from worldpool.models import Verdict, Worker
from worldpool.routing.filters.base import ColumnFilter, at
from worldpool.routing.interface import Mask, RoutingContext, Rows, excluded, ok
from worldpool.routing.pool import PoolSnapshot


class CapacityFilter(ColumnFilter):
    name = "capacity"
    remedy = "wait for a free slot"
    transient = True

    def failures_at(
        self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows | None
    ) -> dict[str, Mask]:
        return {"full": at(pool.free_slots, rows) <= 0}

    def check_rows(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Mask:
        flags: Mask = pool.free_slots[rows] > 0
        return flags

    def check(self, ctx: RoutingContext, pool: PoolSnapshot) -> tuple[dict[str, Mask], Mask]:
        full = pool.free_slots <= 0
        return {"full": full}, ~full

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        if worker.free_slots <= 0:
            used, slots = worker.state.running, worker.profile.max_concurrency
            return excluded(self.name, "full", f"has all slots busy ({used}/{slots} in use)")
        return ok(self.name)

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        return "has a free slot"
