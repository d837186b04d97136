"""Quick start: three handlers, a three-step workflow, the client. Run it:

python examples/quickstart.py                           # embedded: no server
python examples/quickstart.py redis://127.0.0.1:6379/0  # a deployment: `worldpool serve`
    # and workers such as `worldpool worker --id ap-1 --region ap-northeast-1
    # --handlers examples.quickstart:HANDLERS`
"""

from __future__ import annotations

import asyncio
import sys

from worldpool import Client, EmbeddedPool, TaskContext, Workflow, WorkflowSpec, WorkflowStatus
from worldpool.testing import make_worker


def fetch(ctx: TaskContext) -> int:
    text = "the quick brown fox jumps over the lazy dog"
    ctx.store("text.txt", text, "text/plain")
    return len(text)


def count_words(ctx: TaskContext) -> int:
    return len(ctx.read_text("fetch/text.txt").split())


def report(ctx: TaskContext) -> str:
    return f"{ctx.upstream['count']} words in {ctx.upstream['fetch']} characters"


HANDLERS = {"fetch": fetch, "count_words": count_words, "report": report}


def word_count() -> WorkflowSpec:
    wf = Workflow("word-count", user_location="tokyo")
    fetched = wf.step("fetch", handler="fetch")
    counted = wf.step("count", handler="count_words", after=[fetched], sticky_to=fetched)
    wf.step("report", handler="report", after=[counted, fetched], interactive=True)
    return wf.build()


async def run(client: Client) -> WorkflowStatus:
    """What the program does, embedded or against a deployment."""
    handle = await client.submit_workflow(word_count())
    return await handle.result(timeout_s=60)


async def main(url: str | None = None) -> WorkflowStatus:
    if url is not None:
        async with await Client.connect(url) as client:
            return await run(client)
    workers = [
        make_worker("eu-1", region="eu-west-1", handlers=list(HANDLERS)),
        make_worker("ap-1", region="ap-northeast-1", handlers=list(HANDLERS)),
    ]
    async with EmbeddedPool(HANDLERS, workers) as pool:
        return await run(pool.client)


if __name__ == "__main__":
    status = asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
    for step in status.steps:
        print(f"{step.step:8} {step.status:10} on {step.worker} ({step.region}): {step.reason}")
