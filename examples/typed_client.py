"""Typed handlers and the client: the same code embedded and against a deployment.

python examples/typed_client.py                           # embedded: no server
python examples/typed_client.py redis://127.0.0.1:6379/0  # a deployment: `worldpool serve`
    # and `worldpool worker --capabilities research --handlers examples.typed_client:HANDLERS`
"""

from __future__ import annotations

import asyncio
import sys

from pydantic import BaseModel, Field

import worldpool
from worldpool import Client, EmbeddedPool, TaskContext, Workflow, WorkflowStatus


class Question(BaseModel):
    text: str = Field(min_length=1)
    words: int = Field(default=3, ge=1, le=20)


class Answer(BaseModel):
    words: list[str]
    count: int


@worldpool.handler(name="answer", capabilities=["research"], retries=1, timeout_s=30)
def answer(ctx: TaskContext, q: Question) -> Answer:
    ctx.log.info("answering %r", q.text)
    words = q.text.split()
    return Answer(words=words[: q.words], count=len(words))


@worldpool.handler(name="shout", retries=0)
def shout(a: Answer) -> Answer:
    return Answer(words=[w.upper() for w in a.words], count=a.count)


HANDLERS = [answer, shout]


async def ask(client: Client) -> tuple[Answer, WorkflowStatus]:
    """What a program does, whichever mode ``client`` is in."""
    first = await client.run(answer, Question(text="the quick brown fox jumps"), timeout_s=30)
    flow = Workflow("ask-and-shout")
    asked = flow.step("answer", handler=answer, payload=Question(text="over the lazy dog"))
    flow.step("shout", handler=shout, payload=first, after=asked)
    status = await (await client.submit_workflow(flow.build())).result(timeout_s=60)
    return first, status


async def main(url: str | None = None) -> tuple[Answer, WorkflowStatus]:
    if url is None:
        async with EmbeddedPool(HANDLERS) as pool:
            return await ask(pool.client)
    async with await Client.connect(url) as client:
        return await ask(client)


if __name__ == "__main__":
    got, done = asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
    print(got)
    for step in done.steps:
        print(f"{step.step:8} {step.status:10} on {step.worker}: {step.result}")
