"""Dead letters on Redis: the shared ``dead`` stream, and one ``dead:{worker}`` stream per
worker for the letters a worker writes itself.

A worker's Redis user may append only to its own ``dead:{W}`` (never to ``dead``), so the
worker a letter names is the stream it is in, not a field its writer chose: a hostile
worker can fill its own stream, never speak for another worker, and cannot write into
what the orchestrator records. A reader merges ``dead`` with the stream of every
registered worker, newest first; each entry is decoded on its own (one that is not a
letter is skipped with a warning, never failing the list around it).
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

from worldpool.backends.base import DeadLetter
from worldpool.backends.redis import codec
from worldpool.backends.redis.keys import Keys

log = logging.getLogger(__name__)


def _letter(worker_id: str | None, fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        worker_id=worker_id if worker_id is not None else codec.text(fields[b"w"]),
        code=codec.text(fields[b"c"]),
        reason=codec.text(fields[b"r"]),
        data=bytes(fields[b"d"]),
        at=float(fields[b"at"]),
    )


async def read_dead_letters(r: Any, keys: Keys, limit: int) -> list[DeadLetter]:
    """The newest ``limit`` letters of ``dead`` and every registered worker's stream."""
    if limit <= 0:
        return []
    workers = sorted(codec.text(w) for w in await r.smembers(keys.workers))
    pipe = r.pipeline(transaction=False)
    pipe.xrevrange(keys.dead, count=limit)
    for worker_id in workers:
        pipe.xrevrange(keys.worker_dead(worker_id), count=limit)
    replies = await pipe.execute()
    letters: list[tuple[float, str, DeadLetter]] = []
    for owner, entries in zip([None, *workers], replies, strict=True):
        for stream_id, fields in entries:
            try:
                letter = _letter(owner, fields)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipped dead letter %r: not a letter (%s)", stream_id, exc)
                continue
            letters.append((letter.at, codec.text(stream_id), letter))
    return [letter for *_, letter in heapq.nlargest(limit, letters, key=lambda x: x[:2])]
