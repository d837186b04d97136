"""The Redis Streams backend: the distributed engine behind ``worldpool serve`` / ``worker``.

Key layout: :mod:`worldpool.backends.redis.keys`. Every step that touches more than one
key, or reads before it writes, is one Lua script in ``scripts/`` (atomic on the server,
one round trip); the batch calls of the fast path (submit, dispatch, result writes) are in
:mod:`worldpool.backends.redis.batch`, one pipelined round trip per batch.

All heartbeat and lease arithmetic uses the Redis server's clock (TIME inside Lua, PX
expiry), so skewed worker clocks cannot cause false failovers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from worldpool.backends.base import (
    DeadLetter,
    Delivery,
    EventPage,
    ResultMessage,
)
from worldpool.backends.redis import codec
from worldpool.backends.redis.batch import RedisBatchCalls, expect_arg, redis_errors
from worldpool.backends.redis.connection import connect, redact
from worldpool.backends.redis.keys import RESULTS_GROUP, WORKER_GROUP, Keys
from worldpool.backends.redis.lane import FastLane
from worldpool.backends.redis.lua import Scripts
from worldpool.config import Settings
from worldpool.errors import ConfigError, NotFoundError, ReservationError
from worldpool.models import (
    Event,
    EventKind,
    HeartbeatReply,
    TaskRecord,
    TaskResult,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
    WorkflowRecord,
)

StreamEntries = list[tuple[bytes, dict[bytes, bytes] | None]]


def _block_ms(block_s: float) -> int | None:
    """XREAD's BLOCK argument: None means do not block (BLOCK 0 would wait forever)."""
    return max(1, int(block_s * 1000)) if block_s > 0 else None


def _event(stream_id: bytes, data: bytes) -> Event:
    event = Event.model_validate_json(data)
    event.seq = codec.seq_from_stream_id(stream_id)
    return event


def _xreadgroup(
    stream: str, group: str, consumer: str, start: bytes | str, count: int, block_s: float
) -> tuple[Any, ...]:
    """The XREADGROUP command of one stream, as sent on a :class:`FastLane`."""
    block = _block_ms(block_s)
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


class RedisBackend(RedisBatchCalls):
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
        state = WorkerState(worker_id=profile.id)
        now, running = await self._scripts.register(
            keys=[
                k.worker(profile.id),
                k.workers,
                k.heartbeats,
                k.queue(profile.id),
                k.slots(profile.id),
            ],
            args=[
                profile.id,
                profile.model_dump_json(),
                codec.dump_state(state),
                profile.max_concurrency,
                WORKER_GROUP,
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
            keys=[k.worker(state.worker_id), k.heartbeats, *(k.task(t) for t in task_ids)],
            args=[
                state.worker_id,
                codec.dump_state(state),
                state.status.value,
                *(str(flight[t]) for t in task_ids),
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

    @redis_errors
    async def get_worker(self, worker_id: str) -> Worker | None:
        return (await self._load_workers([worker_id]))[0]

    async def _load_workers(self, ids: list[str]) -> list[Worker | None]:
        pipe = self._r.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hmget(self.keys.worker(worker_id), ["profile", "state", "status", "hb"])
            pipe.scard(self.keys.slots(worker_id))
        replies = await pipe.execute()
        workers: list[Worker | None] = []
        for fields, running in zip(replies[::2], replies[1::2], strict=True):
            profile, state, status, heartbeat = fields
            if profile is None or state is None or status is None or heartbeat is None:
                workers.append(None)
            else:
                workers.append(codec.load_worker(profile, state, status, heartbeat, running))
        return workers

    @redis_errors
    async def mark_offline(self, worker_id: str) -> bool:
        return bool(await self._scripts.mark_offline(keys=[self.keys.worker(worker_id)]))

    # ------------------------------------------------------------------ delivery
    @redis_errors
    async def reserve_and_send(self, worker_id: str, task_id: str, envelope: bytes) -> str:
        k = self.keys
        ok, value = await self._scripts.reserve_send(
            keys=[k.worker(worker_id), k.slots(worker_id), k.queue(worker_id)],
            args=[task_id, envelope],
        )
        if not ok:
            raise ReservationError(worker_id, codec.text(value))
        return codec.text(value)

    @redis_errors
    async def receive(
        self, worker_id: str, max_count: int = 1, block_s: float = 0.0
    ) -> list[Delivery]:
        queue = self.keys.queue(worker_id)
        entries = await self._read_group(queue, WORKER_GROUP, worker_id, ">", max_count, block_s)
        return [
            Delivery(id=codec.text(i), data=f[b"d"], task_id=codec.text(f.get(b"t", b"")))
            for i, f in entries
            if f
        ]

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
        pairs = zip(flat[::2], flat[1::2], strict=True)
        return [Delivery(id=codec.text(i), data=bytes(d)) for i, d in pairs]

    @redis_errors
    async def release(self, worker_id: str, task_id: str) -> bool:
        return bool(await self._r.srem(self.keys.slots(worker_id), task_id))

    # ------------------------------------------------------------------ results

    @redis_errors
    async def complete(self, result: TaskResult, ack: str | None = None) -> bool:
        k = self.keys
        accepted = await self._scripts.complete(
            keys=[
                k.task(result.task_id),
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

    @staticmethod
    def _results(entries: StreamEntries) -> list[ResultMessage]:
        return [
            ResultMessage(id=codec.text(i), result=TaskResult.model_validate_json(f[b"r"]))
            for i, f in entries
            if f
        ]

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
        return []

    # ------------------------------------------------------------------ task and workflow state
    @redis_errors
    async def put_task(self, record: TaskRecord, expect_version: int | None = None) -> bool:
        return await self._put(record, *self._task_put_args(record, expect_version, []))

    @redis_errors
    async def list_active_tasks(self) -> list[TaskRecord]:
        ids = sorted(codec.text(i) for i in await self._r.smembers(self.keys.active))
        records = [r for r in await self.get_tasks(ids) if r is not None]
        stale = [r.id for r in records if r.status.terminal]
        if stale:
            await self._r.srem(self.keys.active, *stale)
        return [r for r in records if not r.status.terminal]

    @redis_errors
    async def put_workflow(self, record: WorkflowRecord, expect_version: int | None = None) -> bool:
        k = self.keys
        return await self._put(
            record,
            [k.workflow(record.id), k.order, k.active, k.deadlines, k.events, k.workflows],
            [
                expect_arg(expect_version),
                record.id,
                codec.dump_record(record),
                "",
                "-",
                self.settings.event_log_max,
                0,
            ],
        )

    async def _put(
        self, record: TaskRecord | WorkflowRecord, keys: list[str], args: list[Any]
    ) -> bool:
        """One put_record script call (keys and args as the script describes)."""
        version = int(await self._scripts.put_record(keys=keys, args=args))
        if version < 0:
            return False
        record.version = version
        return True

    @redis_errors
    async def get_task(self, task_id: str) -> TaskRecord | None:
        return (await self.get_tasks([task_id]))[0]

    @redis_errors
    async def get_tasks(self, task_ids: list[str]) -> list[TaskRecord | None]:
        return await self._get_many(TaskRecord, [self.keys.task(t) for t in task_ids])

    @redis_errors
    async def list_tasks(self, workflow_id: str | None = None) -> list[TaskRecord]:
        index = self.keys.tasks if workflow_id is None else self.keys.workflow_tasks(workflow_id)
        ids = [codec.text(i) for i in await self._r.zrange(index, 0, -1)]
        return [r for r in await self.get_tasks(ids) if r is not None]

    @redis_errors
    async def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        return (await self._get_many(WorkflowRecord, [self.keys.workflow(workflow_id)]))[0]

    @redis_errors
    async def list_workflows(self) -> list[WorkflowRecord]:
        ids = [codec.text(i) for i in await self._r.zrange(self.keys.workflows, 0, -1)]
        found = await self._get_many(WorkflowRecord, [self.keys.workflow(i) for i in ids])
        return [r for r in found if r is not None]

    async def _get_many(self, model: type[codec.R], keys: list[str]) -> list[codec.R | None]:
        if not keys:
            return []
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, ["data", "version"])
        return [codec.load_record(model, d, v) for d, v in await pipe.execute()]

    @redis_errors
    async def claim_idempotency_key(self, key: str, task_id: str) -> str | None:
        # SET NX GET: binds if unbound and returns the previous binding, in one command.
        bound = await self._r.set(self.keys.idempotency(key), task_id, nx=True, get=True)
        return None if bound is None else codec.text(bound)

    # ------------------------------------------------------------------ pending queue
    @redis_errors
    async def add_pending(self, task_id: str, priority: int = 0) -> None:
        await self._scripts.add_pending(
            keys=[self.keys.pending, self.keys.pending_seq], args=[task_id, priority]
        )

    @redis_errors
    async def remove_pending(self, task_id: str) -> None:
        await self._r.zrem(self.keys.pending, task_id)

    @redis_errors
    async def list_pending(self, limit: int = 1000) -> list[str]:
        if limit <= 0:
            return []
        return [codec.text(i) for i in await self._r.zrange(self.keys.pending, 0, limit - 1)]

    # ------------------------------------------------------------------ artifacts (raw blobs)
    @redis_errors
    async def put_blob(self, digest: str, data: bytes, ttl_s: float | None = None) -> None:
        px = None if ttl_s is None else max(1, int(ttl_s * 1000))
        await self._r.set(self.keys.blob(digest), data, px=px)

    @redis_errors
    async def get_blob(self, digest: str) -> bytes | None:
        data: bytes | None = await self._r.get(self.keys.blob(digest))
        return data

    @redis_errors
    async def has_blob(self, digest: str) -> bool:
        return bool(await self._r.exists(self.keys.blob(digest)))

    # ------------------------------------------------------------------ events

    @redis_errors
    async def append_event(self, event: Event) -> Event:
        # Exact MAXLEN (not ``~``): readers must never see more than event_log_max events,
        # as with the memory backend; trimming one entry per append stays cheap.
        stream_id = await self._r.xadd(
            self.keys.events,
            {"e": event.model_dump_json(exclude={"seq"})},
            maxlen=self.settings.event_log_max,
            approximate=False,
        )
        return event.model_copy(update={"seq": codec.seq_from_stream_id(stream_id)})

    @redis_errors
    async def read_events(
        self, after: str | None = None, limit: int = 1000, block_s: float = 0.0
    ) -> list[Event]:
        return [
            _event(i, f[b"e"]) for i, f in await self._event_entries(after, limit, block_s) if f
        ]

    @redis_errors
    async def read_events_of(
        self,
        kinds: frozenset[EventKind],
        after: str | None = None,
        limit: int = 1000,
        block_s: float = 0.0,
    ) -> EventPage:
        entries = await self._event_entries(after, limit, block_s)
        # Decode only what may match: an event's JSON, as written here, holds its kind as
        # exactly `"kind":"<value>"` (a nested key can match too; the kind check settles it).
        needles = [f'"kind":"{kind.value}"'.encode() for kind in kinds]
        events = [
            _event(i, f[b"e"])
            for i, f in entries
            if f and any(needle in f[b"e"] for needle in needles)
        ]
        cursor = codec.seq_from_stream_id(entries[-1][0]) if entries else after
        return EventPage([e for e in events if e.kind in kinds], cursor)

    async def _event_entries(self, after: str | None, limit: int, block_s: float) -> StreamEntries:
        if limit <= 0:
            return []
        start = "0-0" if after is None else codec.stream_id_from_seq(after)
        reply = await self._r.xread(
            {self.keys.events: start}, count=limit, block=_block_ms(block_s)
        )
        return list(reply[0][1]) if reply else []

    # ------------------------------------------------------------------ dead letters, leases
    @redis_errors
    async def dead_letter(self, worker_id: str, code: str, reason: str, data: bytes) -> None:
        await self._scripts.dead_letter(
            keys=[self.keys.dead], args=[worker_id, code, reason, data, self.settings.event_log_max]
        )

    @redis_errors
    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Newest first; ``at`` is the server time the letter was written."""
        if limit <= 0:
            return []
        entries = await self._r.xrevrange(self.keys.dead, count=limit)
        return [
            DeadLetter(
                worker_id=codec.text(f[b"w"]),
                code=codec.text(f[b"c"]),
                reason=codec.text(f[b"r"]),
                data=f[b"d"],
                at=float(f[b"at"]),
            )
            for _, f in entries
        ]

    @redis_errors
    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        held = await self._scripts.lease_acquire(
            keys=[self.keys.lease(name)], args=[holder, max(1, int(ttl_s * 1000))]
        )
        return bool(held)

    @redis_errors
    async def release_lease(self, name: str, holder: str) -> None:
        await self._scripts.lease_release(keys=[self.keys.lease(name)], args=[holder])
