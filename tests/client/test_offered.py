"""A submit naming a handler no worker ever offered: refused with a did-you-mean, or held
with ``later`` and a pending reason that names the handler."""

from __future__ import annotations

import asyncio

import pytest

from tests.client.handlers import HANDLERS
from worldpool import Client, Workflow
from worldpool.client import TaskHandle, UnknownHandlerError
from worldpool.embedded import EmbeddedPool
from worldpool.models import JSONValue


async def pending_reason(handle: TaskHandle[JSONValue]) -> str:
    for _ in range(200):  # the dispatcher records it on its first pass
        record = await handle.status()
        if record.pending_reason:
            return record.pending_reason
        await asyncio.sleep(0.02)
    raise AssertionError("no pending reason recorded")


async def exercise(client: Client) -> None:
    with pytest.raises(UnknownHandlerError, match=r"'ecoh' \(did you mean 'echo'\?\)"):
        await client.submit("ecoh", {})
    flow = Workflow("typo")
    flow.step("a", handler="echo")
    flow.step("b", handler="nope", after="a")
    with pytest.raises(UnknownHandlerError, match="'nope'") as refused:
        await client.submit_workflow(flow.build())
    assert refused.value.names == ["nope"] and "later=True" in str(refused.value)
    assert await client.list_runs() == []  # nothing was stored

    held = await client.submit("ecoh", {}, later=True)
    assert (await pending_reason(held)).startswith("no worker offers handler 'ecoh'")
    assert await held.cancel()
    assert await client.run("echo", {"ok": 1}, timeout_s=30) == {"ok": 1}


async def test_unknown_handlers_embedded() -> None:
    async with EmbeddedPool(HANDLERS) as pool:
        await exercise(pool.client)
