"""Extra registered workers for the pool-size runs: ``python -m bench.pool_filler``.

Registers ``--count`` workers that lack the benchmark's handler (they advertise ``other``)
through the backend API, then heartbeats every one of them each ``--every-s`` until
killed, as one process: the pool the orchestrator sees is as big as a real one, and every
extra worker is live.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from worldpool.backends.redis import RedisBackend
from worldpool.config import Settings
from worldpool.embedded import make_worker
from worldpool.models import WorkerState, WorkerStatus

OFFLINE = WorkerStatus.OFFLINE

BATCH = 200


async def run(url: str, namespace: str, count: int, every_s: float) -> None:
    settings = Settings(redis_url=url, namespace=namespace)
    async with RedisBackend.from_url(url, settings) as backend:
        ids = [f"filler-{i:05d}" for i in range(count)]
        for lo in range(0, count, BATCH):
            await asyncio.gather(
                *(
                    backend.register(make_worker(i, handlers=["other"]))
                    for i in ids[lo : lo + BATCH]
                )
            )
        print("registered", flush=True)
        states = {i: WorkerState(worker_id=i) for i in ids}
        while True:
            started = time.monotonic()
            for lo in range(0, count, BATCH):
                batch = ids[lo : lo + BATCH]
                for i in batch:
                    states[i].heartbeat_seq += 1
                replies = await asyncio.gather(*(backend.heartbeat(states[i]) for i in batch))
                lost = [i for i, r in zip(batch, replies, strict=True) if r.status is OFFLINE]
                for i in lost:  # declared dead (this process fell behind): come back
                    await backend.register(make_worker(i, handlers=["other"]))
            await asyncio.sleep(max(0.0, every_s - (time.monotonic() - started)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--every-s", type=float, default=4.0)
    args = parser.parse_args()
    asyncio.run(run(args.redis, args.namespace, args.count, args.every_s))


if __name__ == "__main__":
    main()
