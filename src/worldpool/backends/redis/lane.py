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

A lane made with ``batch_when_busy`` (the scripts' lane: nothing on it blocks) does not
send a command that finds it busy through the pool: the command waits for the call in
flight and goes with every other such command in one write (automatic pipelining), so
many tasks ending at once on a worker cost one write and one read, not a pooled
connection (lock, health probe, system calls) each.

A lane's connection has no per-read timeout (redis-py's costs a timer on every reply, a
large share of a round trip). A watchdog stands in for it: while calls go over the lane,
a timer fires every half :data:`STALL_S`, and a call still unanswered after STALL_S
(blocking reads wait at most ``MAX_BLOCK_S``, less) has its connection closed, so the call
is sent again through the pool on a fresh connection: a stalled (half-open) connection is
replaced within ``1.5 * STALL_S``, at the cost of one timer per period, not per call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from worldpool.backends.redis.connection import MAX_BLOCK_S

Command = tuple[Any, ...]

STALL_S = MAX_BLOCK_S + 1.5
"""A call on the lane unanswered this long is taken for a stalled connection."""

log = logging.getLogger(__name__)


class FastLane:
    """``await lane.execute("EVALSHA", ...)`` or ``await lane.pipeline(cmd, cmd, ...)``."""

    def __init__(self, client: Redis, *, batch_when_busy: bool = False) -> None:
        self._client: Any = client
        self._connection: AbstractConnection | None = None
        self._busy = False
        self._sent_at = 0.0  # loop time the call on the lane was sent
        self._watchdog: asyncio.TimerHandle | None = None
        self._batch_when_busy = batch_when_busy
        self._waiting: list[tuple[Command, asyncio.Future[Any]]] = []  # for the next write
        self._drainer: asyncio.Task[None] | None = None  # sends them (a strong reference)

    async def execute(self, *args: Any) -> Any:
        """One command; its reply, or the error Redis answered raised."""
        if self._busy and self._batch_when_busy:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append((args, future))
            return await future
        [reply] = await self._send([args], raise_on_error=True)
        return reply

    async def pipeline(self, *commands: Command) -> list[Any]:
        """Several commands in one write; each reply, or the ResponseError it got."""
        return await self._send(list(commands), raise_on_error=False)

    async def _send(self, commands: list[Command], raise_on_error: bool) -> list[Any]:
        if not self._busy:
            self._busy = True
            loop = asyncio.get_running_loop()
            self._sent_at = loop.time()
            if self._watchdog is None:
                self._watchdog = loop.call_later(STALL_S / 2, self._check)
            try:
                return await self._on_lane(commands, raise_on_error)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                pass  # the connection closed itself; sent again below
            finally:
                self._busy = False
                if self._waiting:
                    self._busy = True  # held for the waiting commands' write
                    self._drainer = asyncio.get_running_loop().create_task(self._send_waiting())
        if len(commands) == 1 and raise_on_error:
            return [await self._client.execute_command(*commands[0])]
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=raise_on_error))

    async def _send_waiting(self) -> None:
        """Send the commands that found the lane busy, in one write, until none wait;
        each waiter gets its own reply or error. If the connection fails, each goes again
        through the pool (as a call that found the lane busy would)."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                self._sent_at = asyncio.get_running_loop().time()
                try:
                    replies = await self._on_lane([args for args, _ in batch], False)
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    for args, future in batch:
                        self._resolve(future, await self._pooled(args))
                    continue
                except asyncio.CancelledError:  # shutdown: nobody is left hanging
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # e.g. an unreadable reply: each waiter raises it
                    for _, future in batch:
                        self._resolve(future, exc)
                    continue
                for (_, future), reply in zip(batch, replies, strict=True):
                    self._resolve(future, reply)
        finally:
            self._busy = False

    async def _pooled(self, args: Command) -> Any:
        try:
            return await self._client.execute_command(*args)
        except Exception as exc:  # handed to its waiter, raised there
            return exc

    @staticmethod
    def _resolve(future: asyncio.Future[Any], reply: Any) -> None:
        if future.done():  # its caller was cancelled meanwhile
            return
        if isinstance(reply, Exception):
            future.set_exception(reply)
        else:
            future.set_result(reply)

    def _check(self) -> None:
        """Timer: is the call on the lane unanswered for STALL_S? Then it is stalled."""
        self._watchdog = None
        if not self._busy:
            return  # idle: the next call sets the timer again
        loop = asyncio.get_running_loop()
        if loop.time() - self._sent_at > STALL_S and self._connection is not None:
            log.warning("a Redis connection stalled for %.0fs; replacing it", STALL_S)
            writer = getattr(self._connection, "_writer", None)
            if writer is not None:
                writer.transport.abort()  # the pending read fails; the call goes again
        self._watchdog = loop.call_later(STALL_S / 2, self._check)

    async def _on_lane(self, commands: list[Command], raise_on_error: bool) -> list[Any]:
        if self._connection is None:
            self._connection = self._client.connection_pool.make_connection()
            self._connection.socket_timeout = None  # the watchdog bounds the lane
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
        if self._drainer is not None and not self._drainer.done():
            self._drainer.cancel()
        for _, future in self._waiting:  # closed under them: nobody is left hanging
            future.cancel()
        self._waiting = []
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._connection is not None:
            await self._connection.disconnect()
            self._connection = None
