"""Native worldpool handlers of the mixed workflow (``--handlers tests.bridges.native:HANDLERS``)."""

from __future__ import annotations

from worldpool.worker.handlers import TaskContext


def words(ctx: TaskContext) -> str:
    return "hello from worldpool"


def count(ctx: TaskContext) -> dict[str, object]:
    shouted = ctx.upstream["shout"]
    assert isinstance(shouted, dict)
    return {"chars": len(str(shouted["text"])), "text": shouted["text"]}


HANDLERS = {"words": words, "count": count}
