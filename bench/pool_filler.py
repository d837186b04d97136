"""Extra registered workers for the pool-size runs: ``python -m bench.pool_filler``.

Registers ``--count`` workers that lack the benchmark's handler (they advertise ``other``)
through the backend API, then heartbeats every one of them each ``--every-s`` until
killed (one at a time, spread evenly over the period), as one process: the pool the orchestrator sees is as big as a real one, and every
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

BATCH = 200  # registrations at once
PACE_EVERY = 25  # heartbeats between two looks at the clock


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
        # One heartbeat at a time, spread evenly over the period as real workers' are:
        # bursts of concurrent calls cost this process three times the CPU per heartbeat
        # (each takes a pooled connection), CPU the measured processes then lack.
        states = {i: WorkerState(worker_id=i) for i in ids}
        gap_s = every_s / count
        started = time.monotonic()
        sent = 0
        while True:
            worker_id = ids[sent % count]
            state = states[worker_id]
            state.heartbeat_seq += 1
            if (await backend.heartbeat(state)).status is OFFLINE:
                # declared dead (this process fell behind): come back
                await backend.register(make_worker(worker_id, handlers=["other"]))
            sent += 1
            if sent % PACE_EVERY == 0:
                await asyncio.sleep(max(0.0, started + sent * gap_s - time.monotonic()))


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
