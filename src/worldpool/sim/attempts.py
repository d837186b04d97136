"""A task attempt once placed: it runs on its worker, ends, frees the slot, is paid for.

How long the attempt takes comes from :mod:`worldpool.sim.timing`; each attempt fails
with ``fail_p`` (retried with the task's RetryPolicy backoff, preferring another worker).
Cost is the slot's share of the worker's price for the time it was held (at the
time-of-day price of :mod:`worldpool.sim.truth` when that is on), plus egress for
cross-region bytes. Every slot change is patched into the pool the router reads
(:func:`push_state`), as heartbeats and reservations patch it in production. Functions
of the :class:`~worldpool.sim.engine.Simulation` they act on.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from worldpool.models import WorkerState, WorkerStatus
from worldpool.sim.clock import Ev
from worldpool.sim.results import DEAD, DONE, PENDING, RUNNING
from worldpool.sim.timing import EGRESS_USD_PER_GB
from worldpool.unchecked import construct

if TYPE_CHECKING:
    from worldpool.sim.engine import Simulation

_STATE_FIELDS = frozenset(WorkerState.model_fields)


def dispatch(sim: Simulation, i: int, row: int, owner: int | None) -> None:
    """Task ``i`` starts on ``row`` (``owner``: the row holding its sticky context)."""
    now = sim.clock.now
    sim.c.dispatches += 1
    sim.status[i] = RUNNING
    sim.attempt[i] += 1
    sim.worker[i] = row
    sim.dispatch_inc[i] = sim.incarnation[row]
    sim.on_worker[row][i] = None
    sim.placer.placed(row, now)
    sim.dispatch_t[i] = now
    if math.isnan(sim.first_dispatch[i]):
        sim.first_dispatch[i] = now
    sim.running[row] += 1
    push_state(sim, row)

    timed = sim.timer.attempt(i, row, sim.worker, owner, int(sim.running[row]))
    dur = timed.duration_s
    for nbytes in timed.cross_region_bytes:
        sim.c.cross_region_bytes += nbytes
        sim.c.egress_cost_usd += nbytes / 1e9 * EGRESS_USD_PER_GB
        sim.cost[i] += nbytes / 1e9 * EGRESS_USD_PER_GB
    if timed.sticky_hit is not None:
        if timed.sticky_hit:
            sim.c.sticky_hits += 1
        else:
            sim.c.sticky_misses += 1
    if not sim.alive[row]:
        return  # sent to a dead worker that nobody noticed yet: DETECT fails it over
    if sim.cfg.fail_p > 0 and sim.rng.random() < sim.cfg.fail_p:
        dur *= float(sim.rng.uniform(0.1, 1.0))
        sim.q.push(now + dur, Ev.FINISH, i, -int(sim.attempt[i]))
    else:
        sim.q.push(now + dur, Ev.FINISH, i, int(sim.attempt[i]))


def push_state(sim: Simulation, row: int) -> None:
    """Patch ``row``'s state into the pool the router reads, as a heartbeat would."""
    status = WorkerStatus.ONLINE if sim.known_online[row] else WorkerStatus.OFFLINE
    values = {
        "worker_id": sim.ids[row],
        "status": status,
        "running": int(sim.running[row]),
        "last_heartbeat": sim.clock.epoch(),
        "heartbeat_seq": 0,
        "consuming": True,
        "latency_ms": None,
        "cached": [],
        "sticky_keys": [],
    }
    sim.pool.update_state(construct(WorkerState, _STATE_FIELDS, values))


def free(sim: Simulation, i: int) -> int:
    """Task ``i`` leaves its worker: the slot is freed and its hold is charged."""
    row = int(sim.worker[i])
    sim.on_worker[row].pop(i, None)
    sim.running[row] -= 1
    prof = sim.profiles[row]
    held = sim.clock.now - float(sim.dispatch_t[i])
    mid = float(sim.dispatch_t[i]) + held / 2
    price = prof.cost_per_hour * sim.truth.price(row, mid)
    sim.cost[i] += price / prof.max_concurrency * held / 3600.0
    sim.c.carbon_kg += sim.truth.carbon_kg(row, mid, held)
    if sim.truth.gpu[row]:
        sim.c.gpu_busy_slot_s += held
    push_state(sim, row)
    return row


def finish(sim: Simulation, i: int, signed_attempt: int) -> None:
    """An attempt ends (a negative attempt number: it failed), unless it is stale."""
    attempt = abs(signed_attempt)
    row = int(sim.worker[i])
    if (
        sim.status[i] != RUNNING
        or sim.attempt[i] != attempt
        or sim.dispatch_inc[i] != sim.incarnation[row]
        or not sim.alive[row]
    ):
        return  # stale: the worker died, the task failed over
    free(sim, i)
    if signed_attempt < 0:
        failed_attempt(sim, i, row)
    else:
        succeeded(sim, i)
    sim._released(row)


def succeeded(sim: Simulation, i: int) -> None:
    """Task ``i`` is done: its workflow counts it and its children may become ready."""
    now, wl = sim.clock.now, sim.wl
    sim.status[i] = DONE
    sim.active -= 1
    sim.end_t[i] = now
    proto = wl.templates[wl.template[i]]
    if proto.affinity is not None:
        sim.key_owner[proto.affinity.key] = int(sim.worker[i])
    w = int(wl.wf[i])
    if w >= 0:
        sim.wf_left[w] -= 1
        if sim.wf_left[w] == 0:
            sim.wf_end[w] = now
    for ch in sim.child_idx[sim.child_ptr[i] : sim.child_ptr[i + 1]].tolist():
        sim.parents_left[ch] -= 1
        if sim.parents_left[ch] == 0:
            sim._ready(ch)


def failed_attempt(sim: Simulation, i: int, row: int) -> None:
    """Retry after the task's backoff (preferring another worker), or dead-letter it."""
    retry = sim.wl.templates[sim.wl.template[i]].retry
    if sim.tries[i] >= retry.max_retries:
        sim.status[i] = DEAD
        sim.active -= 1
        sim.end_t[i] = sim.clock.now
        sim.c.dead_lettered += 1
        return
    sim.tries[i] += 1
    sim.c.retries += 1
    delay = min(
        retry.backoff_max_s,
        retry.backoff_initial_s * retry.backoff_multiplier ** (sim.tries[i] - 1),
    )
    if retry.jitter:
        delay *= float(sim.rng.uniform(0.5, 1.0))
    if retry.prefer_different_worker:
        sim.avoid[i] = sim.avoid.get(i, frozenset()) | {sim.ids[row]}
    sim.status[i] = PENDING
    sim.q.push(sim.clock.now + delay, Ev.RETRY, i, int(sim.attempt[i]))
