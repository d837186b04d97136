"""A worker whose reads of new work hang abandons each one after a bound, reads again, and
says in its heartbeat that it cannot consume once the hang lasts."""

from __future__ import annotations

import asyncio

import pytest

from tests.backends.builders import worker_of
from worldpool.backends.base import Delivery
from worldpool.backends.memory import MemoryBackend
from worldpool.config import Settings
from worldpool.testing import make_worker
from worldpool.worker import runtime
from worldpool.worker.handlers import TaskContext
from worldpool.worker.runtime import WorkerRuntime


class HangingReads(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.hang = False
        self.reads = 0

    async def receive(
        self, worker_id: str, max_count: int = 1, block_s: float = 0.0, *, taken: bool = False
    ) -> list[Delivery]:
        self.reads += 1
        if self.hang:
            await asyncio.Event().wait()  # a half-open connection: no answer, ever
        return await super().receive(worker_id, max_count, block_s, taken=taken)


def noop(ctx: TaskContext) -> None:
    return None


async def test_hanging_reads_are_abandoned_and_the_heartbeat_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "RECEIVE_BLOCK_S", 0.05)
    monkeypatch.setattr(runtime, "RECEIVE_STUCK_AFTER_S", 0.2)
    monkeypatch.setattr(runtime, "CONSUME_STALLED_AFTER_S", 0.6)
    backend = HangingReads()
    worker = WorkerRuntime(
        backend, make_worker("w1", handlers=["noop"]), {"noop": noop}, Settings(heartbeat_s=0.05)
    )
    async with worker:
        await asyncio.sleep(0.2)
        state = await worker_of(backend, "w1")
        assert state is not None and state.state.consuming
        backend.hang = True
        reads = backend.reads
        for _ in range(100):  # bounded: about 2 s
            state = await worker_of(backend, "w1")
            assert state is not None
            if not state.state.consuming:
                break
            await asyncio.sleep(0.02)
        assert not state.state.consuming
        assert backend.reads >= reads + 2  # each hung read was abandoned and sent again
        backend.hang = False
        for _ in range(100):
            state = await worker_of(backend, "w1")
            assert state is not None
            if state.state.consuming:
                break
            await asyncio.sleep(0.02)
        assert state.state.consuming  # reads answer again: it says so
