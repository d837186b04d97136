"""Count Redis round trips made by this process: every command, and every pipeline as one
(commands on the Redis backend's fast lane included).

Patched at the class level (``redis.asyncio``), so it sees every client the process makes.
With ``WORLDPOOL_BENCH_COUNT_FILE`` set, a daemon thread writes the running count to that
file every 20 ms, so the bench can read a worker subprocess's count between phases.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from redis.asyncio.client import Pipeline, Redis

from worldpool.backends.redis.lane import FastLane

COUNT = [0]
_installed = [False]


def install() -> None:
    """Start counting (idempotent)."""
    if _installed[0]:
        return
    _installed[0] = True
    execute_command: Any = Redis.execute_command
    execute: Any = Pipeline.execute
    lane_send: Any = FastLane._send

    async def counted_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        COUNT[0] += 1
        return await execute_command(self, *args, **kwargs)

    async def counted_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        COUNT[0] += 1
        return await execute(self, *args, **kwargs)

    async def counted_lane(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._busy:  # a busy lane hands the call to the pool, counted there
            COUNT[0] += 1
        return await lane_send(self, *args, **kwargs)

    Redis.execute_command = counted_command  # type: ignore[method-assign]
    Pipeline.execute = counted_execute  # type: ignore[method-assign]
    FastLane._send = counted_lane  # type: ignore[method-assign]
    path = os.environ.get("WORLDPOOL_BENCH_COUNT_FILE")
    if path:
        threading.Thread(target=_publish, args=(path,), daemon=True).start()


def _publish(path: str) -> None:
    written = -1
    while True:  # cheap: rewrites the file only when the count moved
        if COUNT[0] != written:
            written = COUNT[0]
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                f.write(str(written))
            os.replace(tmp, path)
        time.sleep(0.05)


def read(path: str) -> int:
    """The count another process last published (0 before its first write)."""
    try:
        with open(path) as f:
            return int(f.read() or 0)
    except (OSError, ValueError):
        return 0
