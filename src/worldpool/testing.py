"""Helpers for testing your own handlers and workflows in-process.

    async with EmbeddedPool(handlers={"double": double}) as pool:
        record = await pool.run_task(TaskSpec(handler="double", payload={"x": 2}))
        assert record.result == 4

:class:`EmbeddedPool` is the real orchestrator and real workers on the memory backend, in
one event loop: the same code as a distributed deployment, only another backend.
:meth:`EmbeddedPool.run_until_idle` waits for every task to end and re-raises the first
handler failure as :class:`~worldpool.errors.TaskFailedError`.
"""

from __future__ import annotations

from worldpool.embedded import FAST_SETTINGS, EmbeddedPool, make_worker

__all__ = ["FAST_SETTINGS", "EmbeddedPool", "make_worker"]
