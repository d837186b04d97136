"""Reading the pool by its changes (``Backend.pool_changes`` on Redis).

The registry scripts (register, heartbeat, mark_offline) keep a pool-changes index
(``scripts/_pool.lua``: worker id -> sequence number of its latest change), and every
heartbeat already lands in the ``heartbeats`` sorted set at server time. A reader that
passes its cursor back gets, in two round trips, the workers that changed since (re-read
whole: profile, state, status, slots held) and the heartbeats since: the work follows the
changes, and a pool of 10,000 idle workers costs the heartbeats they send, nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from worldpool.backends.base import PoolChanges, PoolCursor
from worldpool.backends.redis import codec
from worldpool.backends.redis.keys import Keys
from worldpool.models import Worker, WorkerState

LoadWorkers = Callable[[list[str]], Awaitable[list[Worker | None]]]
# What routing reads of a heartbeat's state: all of it but the counter, which changes on
# every heartbeat and would make every heartbeat a change of the pool.
_ROUTING_FIELDS = {"latency_ms", "cached", "sticky_keys", "consuming"}


def routing_state(state: WorkerState) -> bytes:
    """The part of a heartbeat's state that routing reads, as compared by heartbeat.lua."""
    return orjson.dumps(state.model_dump(mode="json", include=_ROUTING_FIELDS))


async def read_changes(
    r: Any, keys: Keys, load: LoadWorkers, cursor: PoolCursor | None
) -> PoolChanges:
    """See :meth:`Backend.pool_changes`."""
    if cursor is None:
        return await _read_all(r, keys, load)
    pipe = r.pipeline(transaction=False)
    pipe.zrangebyscore(keys.pool_changed, f"({cursor.changed!r}", "+inf", withscores=True)
    pipe.zrangebyscore(keys.heartbeats, repr(cursor.heard), "+inf", withscores=True)
    changed, heard = await pipe.execute()
    ids = [codec.text(member) for member, _ in changed]
    workers = await load(ids) if ids else []
    beats = [(codec.text(member), float(at)) for member, at in heard]
    return PoolChanges(
        cursor=PoolCursor(
            changed=float(changed[-1][1]) if changed else cursor.changed,
            heard=beats[-1][1] if beats else cursor.heard,
        ),
        workers=[w for w in workers if w is not None],
        gone=[i for i, w in zip(ids, workers, strict=True) if w is None],
        heartbeats=beats,
    )


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
