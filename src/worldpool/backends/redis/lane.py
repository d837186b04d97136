"""A fast lane: one connection of the client's own for calls made one at a time.

redis-py's ``execute_command`` checks a connection out of the pool for every command
(a lock, and a readiness probe that is a system call), wraps the call in its retry
helper and records metrics: about a fifth of a round trip on loopback, paid on every
step of a task's fast path. :class:`FastLane` sends commands on a connection it keeps and
reads the replies (through redis-py's reply callbacks, so a reply has the same form as
from the client), nothing more. A call that finds the lane busy (calls overlap, or a
blocking read holds it) takes the pool as before, and a call whose connection fails is
sent again through the pool, whose retries with backoff ride out a Redis restart; the
lane reconnects on its next use.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[Any, ...]


class FastLane:
    """``await lane.execute("EVALSHA", ...)`` or ``await lane.pipeline(cmd, cmd, ...)``."""

    def __init__(self, client: Redis) -> None:
        self._client: Any = client
        self._connection: AbstractConnection | None = None
        self._busy = False

    async def execute(self, *args: Any) -> Any:
        """One command; its reply, or the error Redis answered raised."""
        [reply] = await self._send([args], raise_on_error=True)
        return reply

    async def pipeline(self, *commands: Command) -> list[Any]:
        """Several commands in one write; each reply, or the ResponseError it got."""
        return await self._send(list(commands), raise_on_error=False)

    async def _send(self, commands: list[Command], raise_on_error: bool) -> list[Any]:
        if not self._busy:
            self._busy = True
            try:
                return await self._on_lane(commands, raise_on_error)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                pass  # the connection closed itself; sent again below
            finally:
                self._busy = False
        if len(commands) == 1 and raise_on_error:
            return [await self._client.execute_command(*commands[0])]
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=raise_on_error))

    async def _on_lane(self, commands: list[Command], raise_on_error: bool) -> list[Any]:
        if self._connection is None:
            self._connection = self._client.connection_pool.make_connection()
        connection = self._connection
        await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        replies: list[Any] = []
        error: ResponseError | None = None
        for command in commands:  # every reply is read, even after an error reply
            try:
                reply = await connection.read_response()
            except ResponseError as exc:
                error = error or exc
                replies.append(exc)
                continue
            callback = self._client.response_callbacks.get(command[0])
            replies.append(callback(reply) if callback is not None else reply)
        if error is not None and raise_on_error:
            raise error
        return replies

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.disconnect()
            self._connection = None
