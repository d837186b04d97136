"""A fast lane: one connection of the client's own for calls made one at a time.

redis-py's ``execute_command`` checks a connection out of the pool for every command
(a lock, and a readiness probe that is a system call), wraps the call in its retry
helper and records metrics: about a fifth of a round trip on loopback, paid on every
step of a task's fast path. :class:`FastLane` sends a command on a connection it keeps
and reads the reply, nothing more. A call that finds the lane busy (calls overlap) takes
the pool as before, and a call whose connection fails is sent again through the pool,
whose retries with backoff ride out a Redis restart; the lane reconnects on its next use.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class FastLane:
    """``await lane.execute("EVALSHA", ...)``: the reply as Redis sent it. Only for commands
    redis-py hands back unparsed (EVALSHA, CLIENT ID): the pool path applies redis-py's
    reply callbacks, the lane does not."""

    def __init__(self, client: Redis) -> None:
        self._client: Any = client
        self._connection: AbstractConnection | None = None
        self._busy = False

    async def execute(self, *args: Any) -> Any:
        if self._busy:
            return await self._client.execute_command(*args)
        self._busy = True
        try:
            if self._connection is None:
                self._connection = self._client.connection_pool.make_connection()
            connection = self._connection
            try:
                await connection.send_command(*args, check_health=False)
                return await connection.read_response()
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await connection.disconnect(nowait=True)  # reconnects on the next call
        finally:
            self._busy = False
        return await self._client.execute_command(*args)  # with the pool's retries

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.disconnect()
            self._connection = None
