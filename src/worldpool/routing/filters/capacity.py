"""capacity: the worker has a free task slot (``running < max_concurrency``), and, for a
task that is not interactive, a free slot beyond those the policy keeps for interactive
work (``RoutingPolicy.interactive_reserve`` / ``interactive_reserve_share``).

Codes: ``full`` (every slot busy) and ``reserved`` (the free slots left are kept for
interactive tasks). A task blocked only by this filter waits for a slot; it is not
unplaceable.

The reserve on a worker is ``min(max(N, share x slots), slots - 1)``: never every slot,
so a worker always admits a non-interactive task when it is otherwise idle (a 1-slot
worker keeps nothing back) and such a task cannot wait forever for an idle pool. A
share's fraction of a slot is rounded up on that fraction of the workers (picked by a
hash of the worker id, so always the same ones) and down on the rest: 0.05 of 8 slots is
0.4, so 4 in 10 such workers keep one slot and a pool keeps ``share`` of its slots in all.
"""

from __future__ import annotations

import hashlib

import numpy as np

from worldpool.models import Verdict, Worker
from worldpool.routing.filters.base import ColumnFilter, at, num
from worldpool.routing.interface import Mask, RoutingContext, Rows, excluded, ok
from worldpool.routing.pool import F64, I64, PoolSnapshot

_EPS = 1e-9  # 0.29 x 100 is 28.999...: not a fraction of a slot to round


def worker_fraction(worker_id: str) -> float:
    """A stable number in [0, 1) per worker: whether a share's fraction rounds up there."""
    digest = hashlib.blake2b(worker_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def reserved_slots(slots: int, reserve: int, share: float, worker_id: str = "") -> int:
    """Slots of a ``slots``-slot worker kept for interactive tasks."""
    exact = share * slots
    count = int(exact + _EPS)
    part = exact - count
    if part > _EPS and worker_fraction(worker_id) < part:
        count += 1
    return max(0, min(max(reserve, count), slots - 1))


class CapacityFilter(ColumnFilter):
    name = "capacity"
    remedy = "wait for a free slot"
    transient = True

    def __init__(self, reserve: int = 0, share: float = 0.0) -> None:
        self.reserve = reserve
        self.share = share
        self.setting = ", ".join(
            f"{name}={num(value)}"
            for name, value in (
                ("interactive_reserve", reserve),
                ("interactive_reserve_share", share),
            )
            if value > 0
        )

    def keeps_back(self, ctx: RoutingContext) -> bool:
        """Whether this task may not take the slots kept for interactive work."""
        return bool(self.setting) and not ctx.task.interactive

    def kept(self, pool: PoolSnapshot) -> I64:
        """Per row, the slots kept for interactive tasks (kept until profiles change)."""

        def compute() -> I64:
            slots = pool.max_concurrency
            exact: F64 = slots.astype(np.float64) * self.share
            count = np.floor(exact + _EPS)
            part = exact - count
            if bool((part > _EPS).any()):
                drawn = np.array([worker_fraction(i) for i in pool.ids], dtype=np.float64)
                count += (part > _EPS) & (drawn < part)
            want = np.maximum(self.reserve, count.astype(np.int64))
            out: I64 = np.clip(np.minimum(want, slots - 1), 0, None)
            out.flags.writeable = False
            return out

        column: I64 = pool.memo(("interactive-reserve", self.reserve, self.share), compute)
        return column

    def failures_at(
        self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows | None
    ) -> dict[str, Mask]:
        free = at(pool.free_slots, rows)
        full = free <= 0
        if not self.keeps_back(ctx):
            return {"full": full}
        return {"full": full, "reserved": ~full & (free <= at(self.kept(pool), rows))}

    def check_rows(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Mask:
        if self.keeps_back(ctx):
            kept: Mask = pool.free_slots[rows] > self.kept(pool)[rows]
            return kept
        flags: Mask = pool.free_slots[rows] > 0
        return flags

    def check(self, ctx: RoutingContext, pool: PoolSnapshot) -> tuple[dict[str, Mask], Mask]:
        if self.keeps_back(ctx):
            failures = self.failures_at(ctx, pool, None)
            return failures, pool.free_slots > self.kept(pool)
        full = pool.free_slots <= 0
        return {"full": full}, ~full

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        used, slots = worker.state.running, worker.profile.max_concurrency
        free = worker.free_slots
        if free <= 0:
            return excluded(self.name, "full", f"has all slots busy ({used}/{slots} in use)")
        if self.keeps_back(ctx):
            kept = reserved_slots(slots, self.reserve, self.share, worker.id)
            if free <= kept:
                return excluded(
                    self.name,
                    "reserved",
                    f"has {free} of {slots} slots free, kept for interactive work "
                    f"(this worker keeps {kept}: {self.setting}); this task is not interactive",
                )
        return ok(self.name)

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        if "reserved" in codes:
            return "has a free slot beyond those kept for interactive work"
        return "has a free slot"
