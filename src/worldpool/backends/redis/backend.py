"""The Redis Streams backend: the distributed engine behind ``worldpool serve`` / ``worker``.

This module holds the connection, the worker registry, delivery, results, dead letters and
leases. Key layout: :mod:`worldpool.backends.redis.keys`. Every step that touches more than
one key, or reads before it writes, is one Lua script in ``scripts/`` (atomic on the
server, one round trip; the rules they share are in :mod:`worldpool.backends.redis.lua`).
The class is built in three layers, one module each: :mod:`.batch` (the fast path's batch
calls: submit, dispatch, result writes, one pipelined round trip per batch) under
:mod:`.records` (records, pending queue, blobs, events) under this one.

All heartbeat and lease arithmetic uses the Redis server's clock (TIME inside Lua, PX
expiry), so skewed worker clocks cannot cause false failovers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from worldpool.backends.base import (
    DeadLetter,
    Delivery,
    PoolChanges,
    PoolCursor,
    ResultMessage,
)
from worldpool.backends.redis import codec, dead, pool_feed
from worldpool.backends.redis.batch import redis_errors
from worldpool.backends.redis.connection import connect, redact
from worldpool.backends.redis.keys import RESULTS_GROUP, WORKER_GROUP, Keys
from worldpool.backends.redis.lane import FastLane
from worldpool.backends.redis.lua import Scripts
from worldpool.backends.redis.records import RedisRecords, StreamEntries, block_ms
from worldpool.config import Settings
from worldpool.errors import ConfigError, NotFoundError
from worldpool.models import (
    HeartbeatReply,
    TaskResult,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
)

log = logging.getLogger(__name__)


def _xreadgroup(
    stream: str, group: str, consumer: str, start: bytes | str, count: int, block_s: float
) -> tuple[Any, ...]:
    """The XREADGROUP command of one stream, as sent on a :class:`FastLane`."""
    block = block_ms(block_s)
    blocking = () if block is None else ("BLOCK", block)
    return (
        "XREADGROUP",
        "GROUP",
        group,
        consumer,
        "COUNT",
        count,
        *blocking,
        "STREAMS",
        stream,
        start,
    )


class RedisBackend(RedisRecords):
    """The :class:`Backend` contract on Redis ≥ 7 (or Valkey). Build with :meth:`from_url`."""

    name = "redis"
    now_is_round_trip = True

    def __init__(self, client: Redis, settings: Settings | None = None, *, url: str = "") -> None:
        self.settings = settings or Settings()
        self.client = client
        # redis-py's reply types are unions that depend on RESP version and decoding; the
        # replies are parsed explicitly below, so commands go through an untyped handle.
        self._r: Any = client
        self.keys = Keys.for_namespace(self.settings.namespace)
        self.url = redact(url) if url else "Redis"
        self._scripts = Scripts.load(client)
        # The blocking reads of the hot loops (a worker's deliveries, the results) get a
        # lane of their own, so a read waiting for work never holds up the scripts' lane.
        self._reads = FastLane(client)
        self._closed = False
        # Results consumers of this client that drained their backlog from before a restart,
        # and how far each one got through it (the same recovery as the memory backend).
        self._recovered: set[str] = set()
        self._next_claim_at = 0.0
        self._recovery: dict[str, bytes] = {}
        self._poisoned: list[tuple[str, dict[bytes, bytes] | None, str]] = []
        self._registered: set[str] = set()  # the workers this client registered

    @classmethod
    def from_url(
        cls, url: str | None = None, settings: Settings | None = None, **connection: Any
    ) -> RedisBackend:
        """Connect to ``url`` (default ``settings.redis_url``); see :mod:`.connection`."""
        settings = settings or Settings.from_env()
        url = url or settings.redis_url
        if not url:
            raise ConfigError(
                "no Redis URL: pass --redis redis://host:6379/0 or set WORLDPOOL_REDIS_URL"
            )
        from worldpool.backends.redis.connection import unprotected_warning

        warning = unprotected_warning(url)
        if warning:
            log.warning(warning)
        return cls(connect(url, **connection), settings, url=url)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._scripts.lane.aclose()
            await self._reads.aclose()
            await self.client.aclose()

    @redis_errors
    async def now(self) -> float:
        seconds, micros = await self._r.time()
        return float(seconds) + float(micros) / 1_000_000

    # ------------------------------------------------------------------ registry
    @redis_errors
    async def register(self, profile: WorkerProfile) -> WorkerState:
        k = self.keys
        self._registered.add(profile.id)
        state = WorkerState(worker_id=profile.id)
        now, running = await self._scripts.register(
            keys=[
                k.worker(profile.id),
                k.workers,
                k.heartbeats,
                k.queue(profile.id),
                k.slots(profile.id),
                k.pool_changed,
                k.handlers_offered,
            ],
            args=[
                profile.id,
                profile.model_dump_json(),
                codec.dump_state(state),
                profile.max_concurrency,
                WORKER_GROUP,
                pool_feed.routing_state(state),
                *sorted(profile.handlers),
            ],
        )
        return WorkerState(
            worker_id=profile.id,
            status=WorkerStatus.ONLINE,
            running=int(running),
            last_heartbeat=float(now),
        )

    @redis_errors
    async def heartbeat(
        self, state: WorkerState, in_flight: dict[str, int] | None = None
    ) -> HeartbeatReply:
        k = self.keys
        flight = in_flight or {}
        task_ids = list(flight)
        reply = await self._scripts.heartbeat(
            keys=[
                k.worker(state.worker_id),
                k.heartbeats,
                *(k.fence(t) for t in task_ids),
                k.pool_changed,
            ],
            args=[
                state.worker_id,
                codec.dump_state(state),
                state.status.value,
                *(str(flight[t]) for t in task_ids),
                pool_feed.routing_state(state),
            ],
        )
        if codec.text(reply[0]) == "missing":
            raise NotFoundError("worker", state.worker_id)
        return HeartbeatReply(
            status=WorkerStatus(codec.text(reply[0])),
            revoked=[task_ids[int(i) - 1] for i in reply[2:]],
            server_time=float(reply[1]),
        )

    @redis_errors
    async def list_workers(self) -> list[Worker]:
        ids = sorted(codec.text(i) for i in await self._r.smembers(self.keys.workers))
        found = await self._load_workers(ids)
        return [w for w in found if w is not None]

    async def _load_workers(self, ids: list[str]) -> list[Worker | None]:
        return await pool_feed.load_workers(self._r, self.keys, self._scripts.lane, ids)

    @redis_errors
    async def mark_offline(self, worker_id: str) -> bool:
        keys = [self.keys.worker(worker_id), self.keys.pool_changed]
        return bool(await self._scripts.mark_offline(keys=keys, args=[worker_id]))

    # ------------------------------------------------------------------ delivery
    @redis_errors
    async def receive(
        self, worker_id: str, max_count: int = 1, block_s: float = 0.0, *, taken: bool = False
    ) -> list[Delivery]:
        queue = self.keys.queue(worker_id)
        if taken:  # "0": this consumer's own unacked entries
            entries = await self._read_group(queue, WORKER_GROUP, worker_id, "0", max_count, 0)
        else:
            entries = await self._read_group(
                queue, WORKER_GROUP, worker_id, ">", max_count, block_s
            )
        deliveries, poison = [], []
        for i, f in entries:
            data = f.get(b"d") if f else None
            if f and isinstance(data, bytes):
                deliveries.append(
                    Delivery(id=codec.text(i), data=data, task_id=codec.text(f.get(b"t", b"")))
                )
            else:  # no envelope in it: dead-letter it alone, never its neighbours
                poison.append((codec.text(i), f))
        for delivery_id, fields in poison:
            await self._dead_letter_poison(worker_id, "bad_entry", "no d field", fields)
            await self.ack(worker_id, delivery_id)
        return deliveries

    @redis_errors
    async def ack(self, worker_id: str, delivery_id: str) -> None:
        # Acked entries are deleted, so the stream holds exactly "sent and not acked".
        queue = self.keys.queue(worker_id)
        pipe = self._r.pipeline(transaction=False)
        pipe.xack(queue, WORKER_GROUP, delivery_id)
        pipe.xdel(queue, delivery_id)
        await pipe.execute()

    @redis_errors
    async def reclaim(self, worker_id: str) -> list[Delivery]:
        flat = await self._scripts.reclaim(
            keys=[self.keys.queue(worker_id), self.keys.slots(worker_id)], args=[WORKER_GROUP]
        )
        triples = zip(flat[::3], flat[1::3], flat[2::3], strict=True)
        return [
            Delivery(id=codec.text(i), data=bytes(d), task_id=codec.text(t)) for i, d, t in triples
        ]

    @redis_errors
    async def release(self, worker_id: str, task_id: str) -> bool:
        return bool(await self._r.srem(self.keys.slots(worker_id), task_id))

    # ------------------------------------------------------------------ results

    @redis_errors
    async def complete(self, result: TaskResult, ack: str | None = None) -> bool:
        k = self.keys
        accepted = await self._scripts.complete(
            keys=[
                k.fence(result.task_id),
                k.results,
                k.slots(result.worker_id),
                k.queue(result.worker_id),
            ],
            args=[
                result.attempt,
                result.worker_id,
                result.task_id,
                "1" if result.status.terminal else "0",
                result.model_dump_json(),
                ack or "",
                WORKER_GROUP,
            ],
        )
        return bool(accepted)

    @redis_errors
    async def receive_results(
        self,
        consumer: str,
        max_count: int = 100,
        block_s: float = 0.0,
        ack: Sequence[str] = (),
    ) -> list[ResultMessage]:
        messages = await self._receive_results(consumer, max_count, block_s, ack)
        while self._poisoned:  # a malformed report: out of the stream, with its reason
            entry_id, fields, reason = self._poisoned.pop()
            await self._dead_letter_poison("", "bad_report", reason, fields)
            await self.ack_results([entry_id])
        return messages

    async def _receive_results(
        self,
        consumer: str,
        max_count: int = 100,
        block_s: float = 0.0,
        ack: Sequence[str] = (),
    ) -> list[ResultMessage]:
        results = self.keys.results
        if consumer not in self._recovered or time.monotonic() >= self._next_claim_at:
            await self.ack_results(list(ack))  # the rare paths: acknowledge on its own
            ack = ()
        if consumer not in self._recovered:
            # First calls of this client: what this consumer took and never acked before a
            # restart ("0" reads the consumer's own pending entries), before anything new.
            after = self._recovery.get(consumer, b"0")
            entries = await self._read_group(results, RESULTS_GROUP, consumer, after, max_count, 0)
            if entries:
                self._recovery[consumer] = entries[-1][0]
                return self._results(entries)
            self._recovered.add(consumer)
            self._recovery.pop(consumer, None)
        claimed = await self._claim_stale_results(consumer, max_count)
        if claimed:
            return claimed
        if ack:  # acknowledge and read in one round trip
            *_, reply = await self._reads.pipeline(
                ("XACK", results, RESULTS_GROUP, *ack),
                ("XDEL", results, *ack),
                _xreadgroup(results, RESULTS_GROUP, consumer, ">", max_count, block_s),
            )
            if not isinstance(reply, Exception):
                return self._results(list(reply[0][1]) if reply else [])
            if "NOGROUP" not in str(reply):  # a missing group is made by the read below
                raise reply
        entries = await self._read_group(results, RESULTS_GROUP, consumer, ">", max_count, block_s)
        return self._results(entries)

    async def _claim_stale_results(self, consumer: str, max_count: int) -> list[ResultMessage]:
        """XAUTOCLAIM what a dead replica took and never acked; at most once a second."""
        now = time.monotonic()
        if now < self._next_claim_at:
            return []
        self._next_claim_at = now + 1.0
        idle_ms = int(self.settings.results_claim_after_s * 1000)
        try:
            reply = await self._r.xautoclaim(
                self.keys.results, RESULTS_GROUP, consumer, idle_ms, start_id="0-0", count=max_count
            )
        except ResponseError:  # no group yet: nothing was ever taken
            return []
        return self._results(reply[1])

    def _results(self, entries: StreamEntries) -> list[ResultMessage]:
        """Each entry decoded on its own; a bad one is set aside (``_poisoned``), to be
        dead-lettered and acknowledged by the caller, never failing its neighbours."""
        messages = []
        for i, f in entries:
            try:
                result = TaskResult.model_validate_json(f[b"r"]) if f else None
            except (KeyError, ValueError) as exc:  # pydantic's ValidationError is one
                self._poisoned.append((codec.text(i), f, f"{type(exc).__name__}: {exc}"[:300]))
                continue
            if result is not None:
                messages.append(ResultMessage(id=codec.text(i), result=result))
        return messages

    @redis_errors
    async def ack_results(self, ids: list[str]) -> None:
        if not ids:
            return
        pipe = self._r.pipeline(transaction=False)
        pipe.xack(self.keys.results, RESULTS_GROUP, *ids)
        pipe.xdel(self.keys.results, *ids)
        await pipe.execute()

    async def _read_group(
        self,
        stream: str,
        group: str,
        consumer: str,
        start: bytes | str,
        count: int,
        block_s: float,
    ) -> StreamEntries:
        """XREADGROUP on one stream; (re)creates a missing group (new stream, or a Redis
        that restarted without persistence) instead of failing."""
        for _ in range(2):
            try:
                reply = await self._reads.execute(
                    *_xreadgroup(stream, group, consumer, start, count, block_s)
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                try:
                    await self._r.xgroup_create(stream, group, id="0", mkstream=True)
                except ResponseError as busy:
                    if "BUSYGROUP" not in str(busy):
                        raise
                continue
            return list(reply[0][1]) if reply else []
        # The group vanished again right after it was made (something deletes the stream?):
        # give up on this read, say so, and let the caller's loop read again.
        log.warning("consumer group %s of %s keeps disappearing; read nothing", group, stream)
        return []

    # ------------------------------------------------------------------ dead letters, leases
    @redis_errors
    async def dead_letter(self, worker_id: str, code: str, reason: str, data: bytes) -> None:
        # A worker's own letters (this client registered it: it is that worker's process)
        # go to its own stream, the only one its Redis user may append to (see .dead).
        own = worker_id in self._registered
        key = self.keys.worker_dead(worker_id) if own else self.keys.dead
        await self._scripts.dead_letter(
            keys=[key], args=[worker_id, code, reason, data, self.settings.event_log_max]
        )

    @redis_errors
    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Newest first; ``at`` is the server time the letter was written."""
        return await dead.read_dead_letters(self._r, self.keys, limit)

    @redis_errors
    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        held = await self._scripts.lease_acquire(
            keys=[self.keys.lease(name)], args=[holder, max(1, int(ttl_s * 1000))]
        )
        return bool(held)

    @redis_errors
    async def release_lease(self, name: str, holder: str) -> None:
        await self._scripts.lease_release(keys=[self.keys.lease(name)], args=[holder])

    # ------------------------------------------------------------------ pool changes
    @redis_errors
    async def pool_changes(self, cursor: PoolCursor | None = None) -> PoolChanges:
        return await pool_feed.read_changes(
            self._r, self.keys, self._scripts.lane, self._load_workers, cursor
        )

    @redis_errors
    async def get_workers(self, worker_ids: Sequence[str]) -> list[Worker | None]:
        return await self._load_workers(list(worker_ids))

    async def _dead_letter_poison(
        self, worker_id: str, code: str, reason: str, fields: dict[bytes, bytes] | None
    ) -> None:
        """Dead-letter a stream entry that is not what its stream holds (its raw fields)."""
        raw = (
            b"" if not fields else b"&".join(k + b"=" + bytes(v)[:4096] for k, v in fields.items())
        )
        await self.dead_letter(worker_id, code, reason, raw)

    # ------------------------------------------------------------------ clients (issue 11)
    @redis_errors
    async def offered_handlers(self) -> frozenset[str] | None:
        names = await self._r.smembers(self.keys.handlers_offered)
        return frozenset(codec.text(n) for n in names)
