"""Helpers shared by the built-in scorers."""

from __future__ import annotations

from worldpool import geo
from worldpool.models import Location
from worldpool.routing.interface import RoutingContext


def user_location(ctx: RoutingContext) -> Location | None:
    """The user's location for an interactive task, else None.

    The caller normally resolves it into ``ctx.user_location``; a task that only carries
    a code is resolved here (an unknown code gives None: the task is not rejected).
    """
    if not ctx.task.interactive:
        return None
    if ctx.user_location is not None:
        return ctx.user_location
    if ctx.task.user_location:
        return geo.try_location(ctx.task.user_location)
    return None
