"""Telling a dead worker from a dead Redis (or a paused orchestrator).

A worker is offline when it has been silent for ``offline_after_heartbeats`` heartbeats.
Silence is only counted while the sweeping replica itself could reach the backend: after
the backend was unreachable or restarted, or the replica was stalled or just started, every
worker gets a grace of the same number of heartbeats counted from the reconnect, because
its heartbeats could not have arrived either. Whether the sweeper lost contact is seen two
ways: a backend call that failed, and a gap in the server clock between two successful
calls of the sweep loop wider than :attr:`Liveness.gap_s` (redis-py's reconnect with
backoff hides a short outage inside one slow call).

Each heartbeat carries the worker's sequence number (``WorkerState.heartbeat_seq``, one
more per heartbeat the worker tried to send, sent or not); the offline message names the
last one received and how long ago it was. A worker whose heartbeat says it cannot read
new work (``WorkerState.consuming`` false: its reads have been stuck) is failed over too.
"""

from __future__ import annotations

import logging

from worldpool.models import Worker, WorkerStatus

log = logging.getLogger("worldpool.orchestrator.liveness")


class Liveness:
    """The sweeper's view of who is silent. Feed it :meth:`contact` / :meth:`lost_contact`
    from the sweep loop; ask :meth:`silent` in each pass."""

    def __init__(self, heartbeat_s: float, offline_after_heartbeats: int) -> None:
        self.heartbeat_s = heartbeat_s
        self.heartbeats = offline_after_heartbeats
        self.offline_after_s = heartbeat_s * offline_after_heartbeats
        self.gap_s = max(2 * heartbeat_s, 1.0)
        """Wider than this between two successful loop calls: contact was lost meanwhile."""
        self.grace_from: float | None = None
        """Server time of the last reconnect (None: never lost contact, e.g. in tests
        that call ``sweep_once`` directly)."""
        self._last_contact: float | None = None
        self._lost = True  # the loop has not reached the backend yet

    def lost_contact(self) -> None:
        """A backend call of the sweep loop failed."""
        self._lost = True

    def contact(self, now: float) -> None:
        """A backend call of the sweep loop succeeded at server time ``now``."""
        gap = self._last_contact is not None and now - self._last_contact > self.gap_s
        if self._lost or gap:
            if self._last_contact is not None:
                log.warning(
                    "backend was out of reach for %.1fs; workers get %d heartbeats of grace",
                    now - self._last_contact,
                    self.heartbeats,
                )
            self.grace_from = now
        self._lost = False
        self._last_contact = now

    def silent(self, workers: list[Worker], now: float) -> list[tuple[Worker, str]]:
        """The workers silent for too long, each with the reason to give."""
        found: list[tuple[Worker, str]] = []
        for worker in workers:
            state = worker.state
            if state.status is WorkerStatus.OFFLINE:
                continue
            if not state.consuming:
                found.append((worker, f"worker {worker.id} reports it cannot read new work"))
                continue
            heard = max(state.last_heartbeat, self.grace_from or 0.0)
            if now - heard > self.offline_after_s:
                found.append((
                    worker,
                    f"worker {worker.id} missed {self.heartbeats} heartbeats "
                    f"(last #{state.heartbeat_seq}, {now - state.last_heartbeat:.1f}s ago)",
                ))  # fmt: skip
        return found
