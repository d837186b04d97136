"""Declared handlers the typed-handler tests load, embedded and in worker processes
(``--handlers tests.client.typed_handlers:HANDLERS``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

import worldpool
from worldpool import TaskContext


class PlanInput(BaseModel):
    goal: str
    steps: int = Field(default=2, ge=1, le=10)


class PlanOutput(BaseModel):
    plan: list[str]


@worldpool.handler(name="plan", retries=0, timeout_s=30)
def plan(inp: PlanInput) -> PlanOutput:
    return PlanOutput(plan=[f"{inp.goal} #{i}" for i in range(inp.steps)])


@worldpool.handler(retries=0)
async def review(ctx: TaskContext, inp: PlanOutput) -> dict[str, Any]:
    ctx.log.info("reviewing %d steps", len(inp.plan))
    return {"reviewed": len(inp.plan)}


@worldpool.handler(name="liar", retries=0)
def liar(inp: PlanInput) -> PlanOutput:
    return {"plan": "not a list"}  # type: ignore[return-value]  # what the worker refuses


HANDLERS = [plan, review, liar]
