"""Quick start: two handlers, a three-step workflow, an embedded pool. Run it:

python examples/quickstart.py
"""

from __future__ import annotations

import asyncio

from worldpool.models import WorkflowStatus
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext
from worldpool.workflow.builder import Workflow


def fetch(ctx: TaskContext) -> int:
    text = "the quick brown fox jumps over the lazy dog"
    ctx.store("text.txt", text, "text/plain")
    return len(text)


def count_words(ctx: TaskContext) -> int:
    return len(ctx.read_text("fetch/text.txt").split())


def report(ctx: TaskContext) -> str:
    return f"{ctx.upstream['count']} words in {ctx.upstream['fetch']} characters"


async def main() -> WorkflowStatus:
    workers = [
        make_worker("eu-1", region="eu-west-1", handlers=["fetch", "count_words", "report"]),
        make_worker("ap-1", region="ap-northeast-1", handlers=["fetch", "count_words", "report"]),
    ]
    wf = Workflow("word-count", user_location="tokyo")
    fetched = wf.step("fetch", handler="fetch")
    counted = wf.step("count", handler="count_words", after=[fetched], sticky_to=fetched)
    wf.step("report", handler="report", after=[counted, fetched], interactive=True)
    handlers = {"fetch": fetch, "count_words": count_words, "report": report}
    async with EmbeddedPool(handlers, workers) as pool:
        return await pool.run_workflow(wf.build())


if __name__ == "__main__":
    status = asyncio.run(main())
    for step in status.steps:
        print(f"{step.step:8} {step.status:10} on {step.worker} ({step.region}): {step.reason}")
