"""The Redis backend's fast-path batch calls: one pipelined round trip per batch.

Submits (``create_task.lua``), dispatch passes (``dispatch.lua``), result writes with their
events (``put_record.lua``) and the timeout index read: the bottom layer of
:class:`~worldpool.backends.redis.backend.RedisBackend` (under
:mod:`~worldpool.backends.redis.records`). Each item of a batch is still its own atomic
script call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import NoScriptError, RedisError

from worldpool.backends.base import Backend, Dispatch, DispatchOutcome, NewTask
from worldpool.backends.redis import codec
from worldpool.backends.redis.keys import Keys
from worldpool.backends.redis.lua import Script, Scripts
from worldpool.config import Settings
from worldpool.errors import BackendError
from worldpool.models import Event, TaskRecord

P = ParamSpec("P")
T = TypeVar("T")


def redis_errors(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn redis-py errors (after its reconnect retries gave up) into BackendError."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except RedisError as exc:
            backend = args[0]
            where = backend.url if isinstance(backend, RedisBatchCalls) else "Redis"
            raise BackendError(
                f"Redis call {method.__name__} failed against {where}: {exc}. Check that Redis "
                "is running and reachable and that the URL's user may run it; lost connections "
                "are retried with backoff for about a minute first."
            ) from exc

    return wrapper


def expect_arg(expect_version: int | None) -> str:
    return "" if expect_version is None else str(expect_version)


class RedisBatchCalls(Backend):
    """The batch half of :class:`~worldpool.backends.redis.backend.RedisBackend`."""

    settings: Settings
    keys: Keys
    url: str
    _scripts: Scripts
    _r: Any

    async def _run_script_batch(
        self, script: Script, calls: list[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        """Run one script once per (keys, args), pipelined on the scripts' lane: one write,
        one round trip. (redis-py's own pipelined scripts send a SCRIPT EXISTS first, a
        second round trip every time; here a NOSCRIPT reply, after a Redis restart, loads
        the script and re-runs just the calls that did not run.)"""
        if len(calls) == 1:  # a plain EVALSHA costs less than a pipeline of one
            keys, args = calls[0]
            return [await script(keys, args)]
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):
            commands = [
                ("EVALSHA", script.sha, len(calls[i][0]), *calls[i][0], *calls[i][1]) for i in todo
            ]
            missing = []
            for i, reply in zip(todo, await script.lane.pipeline(*commands), strict=True):
                if isinstance(reply, NoScriptError):
                    missing.append(i)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    replies[i] = reply
            if not missing:
                return replies
            script.sha = await self._r.script_load(script.script)
            todo = missing
        raise BackendError(
            f"Redis keeps forgetting the worldpool script {script.name!r} (SCRIPT FLUSH in a "
            "loop?); check what else manages scripts on this server"
        )

    @redis_errors
    async def dispatch_many(self, batch: list[Dispatch]) -> list[DispatchOutcome]:
        if not batch:
            return []
        k = self.keys
        replies = await self._run_script_batch(
            self._scripts.dispatch,
            [
                (
                    [
                        k.task(item.record.id),
                        k.deadlines,
                        k.worker(item.worker_id),
                        k.slots(item.worker_id),
                        k.queue(item.worker_id),
                        k.pending,
                        k.events,
                        k.fence(item.record.id),
                    ],
                    [
                        item.expect_version,
                        item.record.id,
                        codec.dump_record(item.record),
                        codec.deadline_arg(item.record),
                        item.record.attempt,
                        item.worker_id,
                        item.envelope,
                        item.event.model_dump_json(exclude={"seq"}),
                        self.settings.event_log_max,
                    ],
                )
                for item in batch
            ],
        )
        outcomes = []
        for item, reply in zip(batch, replies, strict=True):
            code = int(reply[0])
            if code == 1:
                item.record.version = int(reply[1])
                outcomes.append(DispatchOutcome(sent=True, delivery_id=codec.text(reply[2])))
            elif code == 0:
                outcomes.append(DispatchOutcome(sent=False, conflict=True))
            else:
                outcomes.append(DispatchOutcome(sent=False, reason=codec.text(reply[1])))
        return outcomes

    def _task_put_args(
        self, record: TaskRecord, expect_version: int | None, events: list[Event]
    ) -> tuple[list[str], list[Any]]:
        """put_record.lua's keys and args for a task (see the script for the layout)."""
        k = self.keys
        indexes = [k.tasks]
        if record.spec.workflow_id:
            indexes.append(k.workflow_tasks(record.spec.workflow_id))
        # The active-set and timeout-index updates, the events and the push of a final
        # record to the client that waits for it ride in the same script.
        reply = k.events
        if record.spec.reply_to and record.status.terminal:
            reply = k.reply(record.spec.reply_to)
        return (
            [
                k.task(record.id),
                k.order,
                k.active,
                k.deadlines,
                k.events,
                reply,
                k.fence(record.id),
                *indexes,
            ],
            [
                expect_arg(expect_version),
                record.id,
                codec.dump_record(record),
                "rem" if record.status.terminal else "add",
                codec.deadline_arg(record),
                self.settings.event_log_max,
                len(events),
                *(e.model_dump_json(exclude={"seq"}) for e in events),
                *codec.fencing_fields(record),
            ],
        )

    @redis_errors
    async def create_tasks(self, items: list[NewTask]) -> list[DispatchOutcome]:
        if not items:
            return []
        replies = await self._run_script_batch(
            self._scripts.create_task, [self._create_args(item) for item in items]
        )
        outcomes = []
        for item, reply in zip(items, replies, strict=True):
            code = int(reply[0])
            if code == 0:
                outcomes.append(DispatchOutcome(sent=False, conflict=True))
                continue
            item.record.version = 1
            if code == 2 and item.dispatch is not None:
                item.dispatch.record.version = 2
                outcomes.append(DispatchOutcome(sent=True, delivery_id=codec.text(reply[1])))
            else:
                outcomes.append(DispatchOutcome(sent=False, reason=codec.text(reply[1])))
        return outcomes

    def _create_args(self, item: NewTask) -> tuple[list[str], list[Any]]:
        """create_task.lua's keys and args (see the script for the layout)."""
        k = self.keys
        record, routed = item.record, item.dispatch
        indexes = [k.tasks]
        if record.spec.workflow_id:
            indexes.append(k.workflow_tasks(record.spec.workflow_id))
        worker = routed.worker_id if routed else ""
        send: list[Any] = ["", "", "", "", ""]
        if routed is not None:
            send = [
                codec.dump_record(routed.record),
                codec.deadline_arg(routed.record),
                routed.record.attempt,
                routed.envelope,
                routed.event.model_dump_json(exclude={"seq"}),
            ]
        return (
            [
                k.task(record.id),
                k.order,
                k.active,
                k.deadlines,
                k.pending,
                k.events,
                k.worker(worker),
                k.slots(worker),
                k.queue(worker),
                k.queued,
                k.fence(record.id),
                *indexes,
            ],
            [
                record.id,
                codec.dump_record(record),
                codec.deadline_arg(record),
                record.spec.priority,
                item.event.model_dump_json(exclude={"seq"}),
                self.settings.event_log_max,
                worker,
                *send,
                "1" if item.only_if_queue_empty else "",
                *codec.fencing_fields(record),
            ],
        )

    @redis_errors
    async def put_tasks(
        self,
        writes: list[tuple[TaskRecord, int | None]],
        events: list[list[Event]] | None = None,
    ) -> list[bool]:
        if not writes:
            return []
        calls = [
            self._task_put_args(record, expect, events[i] if events else [])
            for i, (record, expect) in enumerate(writes)
        ]
        done = []
        versions = await self._run_script_batch(self._scripts.put_record, calls)
        for (record, _), version in zip(writes, versions, strict=True):
            if int(version) >= 0:
                record.version = int(version)
            done.append(int(version) >= 0)
        return done

    @redis_errors
    async def list_due_tasks(self, now: float, limit: int = 1000) -> list[TaskRecord]:
        ids = [
            codec.text(i)
            for i in await self._r.zrangebyscore(
                self.keys.deadlines, "-inf", now, start=0, num=limit
            )
        ]
        records = [r for r in await self.get_tasks(ids) if r is not None]
        return [r for r in records if not r.status.terminal]

    @redis_errors
    async def append_events(self, events: list[Event]) -> list[Event]:
        if not events:
            return []
        pipe = self._r.pipeline(transaction=False)
        for event in events:
            pipe.xadd(
                self.keys.events,
                {"e": event.model_dump_json(exclude={"seq"})},
                maxlen=self.settings.event_log_max,
                approximate=False,
            )
        ids = await pipe.execute()
        return [
            e.model_copy(update={"seq": codec.seq_from_stream_id(i)})
            for e, i in zip(events, ids, strict=True)
        ]
