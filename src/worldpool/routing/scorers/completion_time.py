"""completion_time: prefer the worker expected to finish this task soonest.

The estimated completion time of the task on each feasible worker, in seconds:

    queue wait + input transfer + run time at that box's speed + the round trip

* **queue wait**: 0 while the box has a free slot; past ``max_concurrency`` each request
  ahead costs one run time divided by the slots;
* **input transfer**: bytes of ``task.inputs`` the worker does not cache, over its
  advertised ``network.bandwidth_mbps`` (100 Mbit/s when unknown);
* **run time**: output tokens (``payload["max_tokens"]``, else 256) over the tokens/s the
  request would get there (batching curve); 0 for a task naming no served model, whose
  run time this scorer cannot tell apart between workers;
* **round trip**: to the user for an interactive task with a location, else to the
  orchestrator (the same RTT the ``latency`` scorer reads).

Scores ``soonest / eta``: the soonest worker 1.0, one taking twice as long 0.5. It
accounts for distance once, in seconds, beside the work, so it can replace the
``geo_proximity`` + ``latency`` pair that counts distance twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.scorers.work import (
    F64,
    bandwidth_mbps,
    best_over,
    gpu_name,
    input_bytes,
    output_tokens,
    request_speed,
    round_trip_s,
    slot_column,
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Parts of the estimated completion time, seconds, per row."""

    queue_s: F64
    transfer_s: F64
    run_s: F64
    rtt_s: F64
    speed: F64 | None  # tokens/s, None for a task naming no model

    @property
    def total_s(self) -> F64:
        out: F64 = self.queue_s + self.transfer_s + self.run_s + self.rtt_s
        return out


def estimate(ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Estimate:
    speed = request_speed(ctx, pool, rows)
    if speed is None:
        run = np.zeros(len(rows), dtype=np.float64)
    else:
        with np.errstate(divide="ignore"):
            run = np.where(speed > 0, output_tokens(ctx) / speed, np.inf)
    slots = slot_column(pool)[rows]
    ahead = np.maximum(pool.running[rows].astype(np.float64) + 1.0 - slots, 0.0)
    queue = np.where(ahead > 0, ahead * run / slots, 0.0)
    if ctx.task.inputs:
        transfer = input_bytes(ctx, pool, rows) * 8.0 / (bandwidth_mbps(pool)[rows] * 1e6)
    else:  # nothing to fetch: 0 bytes over any (positive) bandwidth
        transfer = np.zeros(len(rows), dtype=np.float64)
    return Estimate(queue, transfer, run, round_trip_s(ctx, pool, rows), speed)


class CompletionTimeScorer:
    name = "completion_time"
    bounded = True  # best_over is in [0, 1]

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        if len(rows) == 0:
            return None
        return best_over(estimate(ctx, pool, rows).total_s)

    def detail(self, ctx: RoutingContext, pool: PoolSnapshot, row: int) -> str | None:
        est = estimate(ctx, pool, np.array([row], dtype=np.intp))
        parts = (
            f"queue {est.queue_s[0]:.1f} s + input {est.transfer_s[0]:.2f} s + "
            f"run {est.run_s[0]:.1f} s + rtt {est.rtt_s[0] * 1000:.0f} ms "
            f"= {est.total_s[0]:.2f} s"
        )
        if est.speed is None:
            return f"{gpu_name(pool, row)}: {parts}"
        return f"{gpu_name(pool, row)} at {float(est.speed[0]):.0f} tokens/s: {parts}"
