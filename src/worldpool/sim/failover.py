"""Worker crashes, their detection and recovery, as the simulator models them.

A crashed worker runs nothing more but is still believed online until ``detect_s``
(3 missed heartbeats) later; then its tasks fail over (preferring another worker) and
tasks waiting for it as their sticky worker are routed again. A repair brings it back
empty. Functions of the :class:`~worldpool.sim.engine.Simulation` they act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worldpool.sim import attempts
from worldpool.sim.clock import Ev
from worldpool.sim.results import PENDING

if TYPE_CHECKING:
    from worldpool.sim.engine import Simulation


def crash(sim: Simulation, row: int) -> None:
    """The worker dies silently; its death is noticed ``detect_s`` later."""
    sim.down[row] += 1
    if not sim.alive[row]:
        return
    sim.c.crashes += 1
    sim.alive[row] = False
    sim.incarnation[row] += 1
    sim.q.push(sim.clock.now + sim.cfg.detect_s, Ev.DETECT, row, int(sim.incarnation[row]))


def detect(sim: Simulation, row: int) -> None:
    """Missed heartbeats noticed: the worker is offline and its tasks fail over."""
    if sim.alive[row] or not sim.known_online[row]:
        return
    sim.known_online[row] = False
    reschedulable(sim)
    for i in list(sim.on_worker[row]):
        attempts.free(sim, i)
        sim.c.failovers += 1
        sim.avoid[i] = sim.avoid.get(i, frozenset()) | {sim.ids[row]}
        sim.status[i] = PENDING
        sim._try_place(i)
    attempts.push_state(sim, row)
    for i in list(sim.affinity_waiters.pop(row, {})):  # its hard-sticky waiters move on
        if sim.status[i] == PENDING:
            sim._try_place(i)


def recover(sim: Simulation, row: int) -> None:
    """The worker comes back empty (once every overlapping outage is over)."""
    sim.down[row] -= 1
    if sim.alive[row] or sim.down[row] > 0:
        return
    if sim.known_online[row]:  # repaired before anyone noticed: detect now
        detect(sim, row)
    sim.alive[row] = True
    sim.known_online[row] = True
    attempts.push_state(sim, row)
    reschedulable(sim)
    sim._released(row)


def reschedulable(sim: Simulation) -> None:
    """Which pending groups have an online worker that could ever run them."""
    for g in sim.groups.values():
        g.settle(sim.clock.now, sim.c)
        g.unschedulable = not bool((g.eligible & sim.known_online).any())
