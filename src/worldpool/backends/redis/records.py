"""The Redis backend's stored state: task and workflow records, idempotency keys, the
pending queue, blobs and the event log, for :class:`RedisBackend` (which inherits them).

Record writes go through ``put_record.lua`` (compare-and-set, indexes and events in one
step); reads are pipelined HMGETs, one round trip for any number of records.
"""

from __future__ import annotations

import logging
from typing import Any

from worldpool.backends.base import (
    EffectClaim,
    EpochMark,
    EventPage,
    PushedRecord,
    QueuedPage,
    ReplyPage,
)
from worldpool.backends.redis import codec
from worldpool.backends.redis.batch import RedisBatchCalls, expect_arg, redis_errors
from worldpool.backends.redis.connection import MAX_BLOCK_S
from worldpool.models import Event, EventKind, TaskRecord, WorkflowRecord

log = logging.getLogger(__name__)

StreamEntries = list[tuple[bytes, dict[bytes, bytes] | None]]


def block_ms(block_s: float) -> int | None:
    """XREAD's BLOCK argument: None means do not block (BLOCK 0 would wait forever). Capped
    at MAX_BLOCK_S, so that every reply fits the socket timeout (see ``connection``)."""
    return max(1, int(min(block_s, MAX_BLOCK_S) * 1000)) if block_s > 0 else None


def _event(stream_id: bytes, data: bytes) -> Event:
    event = Event.model_validate_json(data)
    event.seq = codec.seq_from_stream_id(stream_id)
    return event


def _load_or_skip(
    model: type[codec.R], key: str, data: bytes | None, version: bytes | None
) -> codec.R | None:
    """One record decoded on its own: an undecodable one reads as missing (and is logged),
    so it never fails the batch around it (a pending-queue pass, a list)."""
    try:
        return codec.load_record(model, data, version)
    except ValueError as exc:
        log.warning("skipped record %s: it does not decode (%s)", key, str(exc)[:200])
        return None


_warned: set[bytes] = set()


def _events(entries: StreamEntries, needles: list[bytes] | None = None) -> list[Event]:
    """Each entry decoded on its own: one that is not an event (written by hand, or by a
    newer version) is skipped, with a warning once, never failing the page around it."""
    events = []
    for stream_id, fields in entries:
        data = fields.get(b"e") if fields else None
        if needles is not None and not (
            isinstance(data, bytes) and any(n in data for n in needles)
        ):
            continue
        try:
            events.append(_event(stream_id, data))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            if stream_id not in _warned and len(_warned) < 10_000:
                _warned.add(stream_id)
                log.warning("skipped event log entry %r: not an event (%s)", stream_id, exc)
    return events


class RedisRecords(RedisBatchCalls):
    """The state half of :class:`~worldpool.backends.redis.backend.RedisBackend`."""

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
            [
                k.workflow(record.id),
                k.order,
                k.active,
                k.deadlines,
                k.events,
                k.events,
                k.workflow(record.id),  # no fencing copy: no pairs go there
                k.workflows,
            ],
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
        replies = await pipe.execute()
        try:  # the fast path: every record decodes
            return [codec.load_record(model, d, v) for d, v in replies]
        except ValueError:  # pydantic's ValidationError is one
            return [
                _load_or_skip(model, key, d, v) for key, (d, v) in zip(keys, replies, strict=True)
            ]

    @redis_errors
    async def claim_idempotency_key(self, key: str, task_id: str) -> str | None:
        # SET NX GET: binds if unbound and returns the previous binding, in one command.
        bound = await self._r.set(self.keys.idempotency(key), task_id, nx=True, get=True)
        return None if bound is None else codec.text(bound)

    # ------------------------------------------------------------------ pending queue
    @redis_errors
    async def add_pending(self, task_id: str, priority: int = 0) -> None:
        await self._scripts.add_pending(
            keys=[self.keys.pending, self.keys.tasks, self.keys.order], args=[task_id, priority]
        )

    @redis_errors
    async def remove_pending(self, task_id: str) -> None:
        await self._r.zrem(self.keys.pending, task_id)

    @redis_errors
    async def list_pending(self, limit: int = 1000) -> list[str]:
        if limit <= 0:
            return []
        return [codec.text(i) for i in await self._r.zrange(self.keys.pending, 0, limit - 1)]

    # ------------------------------------------------------------------ deployment epoch
    @redis_errors
    async def touch_epoch(self, candidate: str, previous: str | None = None) -> EpochMark:
        epoch, mark, created, lost_from, lost_at = await self._scripts.touch_epoch(
            keys=[self.keys.epoch], args=[candidate, previous or ""]
        )
        return _epoch(epoch, mark, lost_from, lost_at, created=bool(int(created)))

    @redis_errors
    async def read_epoch(self) -> EpochMark | None:
        fields = await self._r.hmget(self.keys.epoch, ["id", "mark", "lost_from", "lost_at"])
        if fields[0] is None:
            return None
        return _epoch(fields[0], fields[1] or 0, fields[2] or b"", fields[3] or b"")

    # ------------------------------------------------------------------ effect ledger
    @redis_errors
    async def claim_effect(
        self, key: str, task_id: str, worker_id: str, attempt: int, ttl_s: float
    ) -> EffectClaim:
        reply = await self._scripts.claim_effect(
            keys=[self.keys.fence(task_id), self.keys.effect(key)],
            args=[worker_id, attempt, max(1, int(ttl_s * 1000))],
        )
        return EffectClaim(codec.text(reply[0]), reply[1] if len(reply) > 1 else None)

    @redis_errors
    async def finish_effect(
        self, key: str, task_id: str, worker_id: str, attempt: int, value: bytes
    ) -> bool:
        return bool(
            await self._scripts.finish_effect(
                keys=[self.keys.fence(task_id), self.keys.effect(key)],
                args=[worker_id, attempt, value],
            )
        )

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
        return _events(await self._event_entries(after, limit, block_s))

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
        events = _events(entries, needles)
        cursor = codec.seq_from_stream_id(entries[-1][0]) if entries else after
        return EventPage([e for e in events if e.kind in kinds], cursor)

    async def _event_entries(self, after: str | None, limit: int, block_s: float) -> StreamEntries:
        if limit <= 0:
            return []
        start = "0-0" if after is None else codec.stream_id_from_seq(after)
        reply = await self._r.xread({self.keys.events: start}, count=limit, block=block_ms(block_s))
        return list(reply[0][1]) if reply else []

    @redis_errors
    async def read_queued(
        self, after: str | None = None, limit: int = 1000, block_s: float = 0.0
    ) -> QueuedPage:
        key = self.keys.queued
        if after is None:  # from now on: past the newest entry
            newest = await self._r.xrevrange(key, count=1)
            after = codec.text(newest[0][0]) if newest else "0-0"
        reply = await self._r.xread({key: after}, count=limit, block=block_ms(block_s))
        entries = list(reply[0][1]) if reply else []
        ids = [codec.text(fields.get(b"t", b"")) for _, fields in entries]
        cursor = codec.text(entries[-1][0]) if entries else after
        return QueuedPage([i for i in ids if i], cursor)

    @redis_errors
    async def read_replies(
        self, client: str, after: str | None = None, limit: int = 100, block_s: float = 0.0
    ) -> ReplyPage:
        key = self.keys.reply(client)
        reply = await self._r.xread({key: after or "0-0"}, count=limit, block=block_ms(block_s))
        entries = list(reply[0][1]) if reply else []
        replies = []
        for stream_id, fields in entries:
            try:
                if b"t" in fields:  # decoded when a handle takes it
                    version = int(fields[b"v"])
                    replies.append(PushedRecord(codec.text(fields[b"t"]), version, fields[b"d"]))
                    continue
                # Pushed by an older put_record (no id field): decoded now, for its id.
                record = codec.load_record(TaskRecord, fields[b"d"], fields[b"v"])
            except (KeyError, ValueError) as exc:  # not ours to trust blindly: skip it
                log.warning("skipped reply entry %r for %s: %s", stream_id, client, exc)
                continue
            if record is not None:
                replies.append(PushedRecord(record.id, record.version, record=record))
        cursor = codec.text(entries[-1][0]) if entries else after
        return ReplyPage(replies, cursor)

    # ------------------------------------------------------------------ trust (issue 13)
    @redis_errors
    async def claim_starts(
        self, worker_id: str, starts: list[tuple[str, int, float]]
    ) -> list[bool]:
        if not starts:
            return []
        pipe = self._r.pipeline(transaction=False)
        for task_id, attempt, ttl_s in starts:
            key = self.keys.seen(worker_id, task_id, attempt)
            pipe.set(key, "1", nx=True, px=max(1, int(ttl_s * 1000)))
        return [bool(reply) for reply in await pipe.execute()]

    @redis_errors
    async def refuse_worker(self, worker_id: str, reason: str) -> None:
        await self._r.set(self.keys.refused(worker_id), reason, ex=24 * 3600)
        await self.mark_offline(worker_id)

    @redis_errors
    async def worker_refusal(self, worker_id: str) -> str | None:
        reason = await self._r.get(self.keys.refused(worker_id))
        return None if reason is None else codec.text(reason)


def _epoch(
    epoch: bytes, mark: bytes | int, lost_from: bytes, lost_at: bytes, created: bool = False
) -> EpochMark:
    return EpochMark(
        codec.text(epoch),
        int(mark),
        created,
        codec.text(lost_from) or None,
        float(lost_at) if lost_at else None,
    )
