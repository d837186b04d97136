"""Handlers the client tests' worker processes load (``--handlers tests.client.handlers:HANDLERS``)."""

from __future__ import annotations

import asyncio
from typing import Any

from worldpool import TaskContext


def echo(ctx: TaskContext) -> Any:
    ctx.log.info("echoing %d keys", len(ctx.payload))
    return ctx.payload


def boom(ctx: TaskContext) -> Any:
    raise ValueError("boom on purpose")


async def nap(ctx: TaskContext) -> Any:
    await asyncio.sleep(float(ctx.payload.get("s", 0.2)))
    return {"slept": ctx.payload.get("s", 0.2)}


HANDLERS = {"echo": echo, "boom": boom, "nap": nap}
