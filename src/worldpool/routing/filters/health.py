"""health: the worker is online and its last heartbeat is fresh.

Codes: ``offline``, ``draining`` (finishing its tasks, taking no new ones) and
``stale_heartbeat`` (online, but silent for longer than ``ctx.heartbeat_timeout_s``).
"""

from __future__ import annotations

import math

from worldpool.models import Verdict, Worker, WorkerStatus
from worldpool.routing.filters.base import ColumnFilter, at, num
from worldpool.routing.interface import Mask, RoutingContext, Rows, excluded, ok
from worldpool.routing.pool import STATUS_CODES, STATUS_ONLINE, PoolSnapshot


class HealthFilter(ColumnFilter):
    name = "health"
    remedy = "bring a worker back online"

    def failures_at(
        self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows | None
    ) -> dict[str, Mask]:
        status = at(pool.status, rows)
        stale = (ctx.now - at(pool.last_heartbeat, rows)) > ctx.heartbeat_timeout_s
        return {
            "offline": status == STATUS_CODES[WorkerStatus.OFFLINE],
            "draining": status == STATUS_CODES[WorkerStatus.DRAINING],
            "stale_heartbeat": (status == STATUS_ONLINE) & stale,
        }

    def check_rows(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Mask:
        passing: Mask = pool.status[rows] == STATUS_ONLINE
        if ctx.heartbeat_timeout_s != math.inf:
            passing &= (ctx.now - pool.last_heartbeat[rows]) <= ctx.heartbeat_timeout_s
        return passing

    def check(self, ctx: RoutingContext, pool: PoolSnapshot) -> tuple[dict[str, Mask], Mask]:
        # Status codes are 0..2, so "online and fresh" is the whole mask; the per-code
        # masks are only worth building when somebody fails.
        passing = pool.status == STATUS_ONLINE
        if ctx.heartbeat_timeout_s != math.inf:
            passing &= (ctx.now - pool.last_heartbeat) <= ctx.heartbeat_timeout_s
        if passing.all():
            return {}, passing
        return self.failures(ctx, pool), passing

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        state = worker.state
        age = ctx.now - state.last_heartbeat
        if state.status is WorkerStatus.OFFLINE:
            return excluded(self.name, "offline", f"is offline (last heartbeat {age:.1f} s ago)")
        if state.status is WorkerStatus.DRAINING:
            why = "is draining (finishing its tasks, taking no new ones)"
            return excluded(self.name, "draining", why)
        if age > ctx.heartbeat_timeout_s:
            return excluded(
                self.name,
                "stale_heartbeat",
                f"has not sent a heartbeat for {age:.1f} s "
                f"(limit {num(ctx.heartbeat_timeout_s)} s)",
            )
        return ok(self.name)
