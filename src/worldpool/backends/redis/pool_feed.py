"""Reading the pool by its changes (``Backend.pool_changes`` on Redis).

The registry scripts (register, heartbeat, mark_offline) keep a pool-changes index
(``scripts/_pool.lua``: worker id -> sequence number of its latest change), and every
heartbeat already lands in the ``heartbeats`` sorted set at server time. A reader that
passes its cursor back gets, in two round trips (three when workers changed), the workers that changed since (re-read
whole: profile, state, status, slots held) and the heartbeats since: the work follows the
changes, and a pool of 10,000 idle workers costs the heartbeats they send, nothing more.

The scores are not trusted: any worker's user may ``ZADD`` any member (an ACL cannot limit
members). Each heard worker's time is taken from its own hash (``hb``, which only its user
can write), and a score in the future never moves the cursor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from worldpool.backends.base import PoolChanges, PoolCursor
from worldpool.backends.redis import codec
from worldpool.backends.redis.keys import Keys
from worldpool.backends.redis.lane import FastLane
from worldpool.backends.redis.lua import Script
from worldpool.models import Worker, WorkerState

MAX_BEATS = 10_000
"""The most heartbeats one read takes (ascending by time: real ones before any forged one
in the future); the rest are read next time."""

LoadWorkers = Callable[[list[str]], Awaitable[list[Worker | None]]]
# What routing reads of a heartbeat's state: all of it but the counter, which changes on
# every heartbeat and would make every heartbeat a change of the pool.
_ROUTING_FIELDS = {"latency_ms", "cached", "sticky_keys", "consuming"}


def routing_state(state: WorkerState) -> bytes:
    """The part of a heartbeat's state that routing reads, as compared by heartbeat.lua."""
    return orjson.dumps(state.model_dump(mode="json", include=_ROUTING_FIELDS))


async def read_changes(
    r: Any, keys: Keys, lane: FastLane, load: LoadWorkers, cursor: PoolCursor | None
) -> PoolChanges:
    """See :meth:`Backend.pool_changes`."""
    if cursor is None:
        return await _read_all(r, keys, load)
    pipe = r.pipeline(transaction=False)
    pipe.time()
    pipe.zrangebyscore(keys.pool_changed, f"({cursor.changed!r}", "+inf", withscores=True)
    pipe.zrangebyscore(
        keys.heartbeats, repr(cursor.heard), "+inf", start=0, num=MAX_BEATS, withscores=True
    )
    (seconds, micros), changed, heard = await pipe.execute()
    ids = [codec.text(member) for member, _ in changed]
    workers = await load(ids) if ids else []
    # A real score is the server time its heartbeat was written at, never later than now:
    # one in the future was written by hand (a worker's user may ZADD any member), and
    # must not carry the cursor past everyone's real heartbeats.
    now = float(seconds) + float(micros) / 1_000_000
    scored = [(codec.text(member), float(at)) for member, at in heard if float(at) <= now]
    return PoolChanges(
        cursor=PoolCursor(
            changed=float(changed[-1][1]) if changed else cursor.changed,
            heard=scored[-1][1] if scored else cursor.heard,
        ),
        workers=[w for w in workers if w is not None],
        gone=[i for i, w in zip(ids, workers, strict=True) if w is None],
        heartbeats=await _own_word(r, keys, lane, scored),
    )


async def _own_word(
    r: Any, keys: Keys, lane: FastLane, scored: list[tuple[str, float]]
) -> list[tuple[str, float]]:
    """The heartbeats heard, each at the time its worker's own hash says (``hb`` in
    ``w:{W}``, which only W's user can write, set in the same step as the score): a score
    another worker set for W (``ZADD`` cannot be limited to one member) changes nothing.
    One call for all of them (``pool_heard.lua``: an HGET per heartbeat heard, in Redis,
    where a pipeline of HGETs cost the reader ~25 us of Python each: a fifth of an idle
    ``serve``'s CPU with 10,000 workers)."""
    if not scored:
        return []
    worker = keys.worker
    times = await Script(r, "pool_heard", lane)([worker(w) for w, _ in scored])
    return [
        (worker_id, float(hb))
        for (worker_id, _), hb in zip(scored, times, strict=True)
        if hb is not None
    ]


async def _read_all(r: Any, keys: Keys, load: LoadWorkers) -> PoolChanges:
    # The cursor is taken before the workers are read: a change made meanwhile is read
    # again next time (harmless), never missed.
    pipe = r.pipeline(transaction=False)
    pipe.zrevrange(keys.pool_changed, 0, 0, withscores=True)
    pipe.zrevrange(keys.heartbeats, 0, 0, withscores=True)
    pipe.smembers(keys.workers)
    top, last_heard, members = await pipe.execute()
    ids = sorted(codec.text(i) for i in members)
    workers = await load(ids)
    return PoolChanges(
        cursor=PoolCursor(
            changed=float(top[0][1]) if top else 0.0,
            heard=float(last_heard[0][1]) if last_heard else 0.0,
        ),
        workers=[w for w in workers if w is not None],
        gone=[],
        heartbeats=[],
        full=True,
    )


LOAD_BATCH = 2_000
"""Workers read per call of ``pool_workers.lua`` (a script holds Redis while it runs)."""


async def load_workers(r: Any, keys: Keys, lane: FastLane, ids: list[str]) -> list[Worker | None]:
    """Current copies of the workers ``ids`` (None for one not registered), in order: one
    script call per LOAD_BATCH workers (``pool_workers.lua``)."""
    workers: list[Worker | None] = []
    script = Script(r, "pool_workers", lane)
    for lo in range(0, len(ids), LOAD_BATCH):
        batch = ids[lo : lo + LOAD_BATCH]
        flat = await script([k for i in batch for k in (keys.worker(i), keys.slots(i))])
        for at in range(0, len(flat), 5):
            profile, state, status, heartbeat, running = flat[at : at + 5]
            if profile is None or state is None or status is None or heartbeat is None:
                workers.append(None)
            else:
                workers.append(codec.load_worker(profile, state, status, heartbeat, running))
    return workers
