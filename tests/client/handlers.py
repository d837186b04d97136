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


def big(ctx: TaskContext) -> Any:
    """A value of about ``mb`` megabytes (as JSON): too large for a record."""
    size = int(float(ctx.payload.get("mb", 5)) * 1_000_000)
    return {"blob": "x" * size, "mb": ctx.payload.get("mb", 5)}


def measure(ctx: TaskContext) -> Any:
    """The sizes of the upstream values that came as input artifacts (``STEP/result.json``)."""
    return {name: len(ctx.read(name)) for name in ctx.inputs if name.endswith("/result.json")}


HANDLERS = {"echo": echo, "boom": boom, "nap": nap, "big": big, "measure": measure}
