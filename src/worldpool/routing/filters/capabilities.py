"""capabilities: required ⊆ advertised, and the worker runs the task's handler.

Codes: ``missing_capability`` and ``no_handler``.
"""

from __future__ import annotations

from collections.abc import Hashable

from worldpool.models import Verdict, Worker
from worldpool.routing.filters.base import ColumnFilter, join
from worldpool.routing.interface import Mask, RoutingContext, Rows, excluded, ok
from worldpool.routing.pool import PoolSnapshot


class CapabilitiesFilter(ColumnFilter):
    name = "capabilities"
    remedy = "add a worker with the capabilities"

    def static_key(self, ctx: RoutingContext) -> Hashable | None:
        return (frozenset(ctx.task.capabilities), ctx.task.handler)

    def failures_at(
        self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows | None
    ) -> dict[str, Mask]:
        task = ctx.task
        out: dict[str, Mask] = {}
        if task.capabilities:
            out["missing_capability"] = ~pool.capabilities.has_all(task.capabilities, rows)
        out["no_handler"] = ~pool.handlers.has_all((task.handler,), rows)
        return out

    def candidates(self, ctx: RoutingContext, pool: PoolSnapshot) -> Rows | None:
        """The workers running the handler, or holding the rarest required capability
        if fewer do (a passing worker is in both)."""
        best = pool.handlers.rows_with(ctx.task.handler)
        for name in ctx.task.capabilities:
            held = pool.capabilities.rows_with(name)
            if len(held) < len(best):
                best = held
        return best

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        profile = worker.profile
        missing = ctx.task.capabilities - profile.capabilities
        if missing:
            return excluded(
                self.name,
                "missing_capability",
                f"lacks {join(missing)} (has {join(profile.capabilities)})",
            )
        if ctx.task.handler not in profile.handlers:
            return excluded(
                self.name,
                "no_handler",
                f"has no handler {ctx.task.handler!r} (handlers: {join(profile.handlers)})",
            )
        return ok(self.name)

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        parts = []
        caps = sorted(ctx.task.capabilities)
        if "missing_capability" in codes:
            noun = "capability" if len(caps) == 1 else "capabilities"
            parts.append(f"has {noun} {', '.join(caps)}")
        if "no_handler" in codes:
            parts.append(f"runs handler {ctx.task.handler!r}")
        return " and ".join(parts) or None
