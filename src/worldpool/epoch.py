"""Noticing a backend that lost its state: :class:`EpochWatch`.

At the first start a deployment epoch is written to the backend (``touch_epoch``). Every
long-running process (``serve``'s sweep loop, each worker after any failed call to the
backend) checks it: if the epoch it knew is gone, Redis came back empty (restarted
without persistence, or flushed); if the epoch's mark is smaller than the last one seen,
it was restored from an older copy (rolled back). Either way the process logs an error,
one ``DEPLOYMENT_STATE_LOST`` event is written (counted by the metrics as
``worldpool_events{kind="deployment.state_lost"}``), ``serve``'s ``/healthz`` fails from
then on, and ``worldpool status`` of an id that vanished says the state was lost.
"""

from __future__ import annotations

import logging
import uuid

from worldpool.backends.base import Backend, EpochMark
from worldpool.errors import NotFoundError
from worldpool.models import Event, EventKind

log = logging.getLogger("worldpool.epoch")


class StateLostError(NotFoundError):
    """A record was not found, and the deployment lost its state since it may have been
    written: say so instead of "no such id"."""

    def __init__(self, kind: str, ident: str, epoch: EpochMark) -> None:
        super().__init__(kind, ident)
        self.args = (
            f"no {kind} with id {ident!r}: this deployment lost its state (epoch "
            f"{epoch.lost_from} is gone; the backend came back empty, now epoch "
            f"{epoch.epoch}); records written before then are gone",
        )


async def explain_missing(backend: Backend, error: NotFoundError) -> NotFoundError:
    """``error``, or a :class:`StateLostError` when the deployment has lost its state."""
    epoch = await backend.read_epoch()
    if epoch is None or epoch.lost_from is None:
        return error
    return StateLostError(error.kind, error.ident, epoch)


class EpochWatch:
    """One process's knowledge of the deployment epoch. ``lost`` says what went wrong
    (None while nothing did)."""

    def __init__(self, backend: Backend, who: str) -> None:
        self._backend = backend
        self._who = who
        self.epoch: str | None = None
        self.mark = 0
        self.lost: str | None = None

    async def check(self) -> str | None:
        """Touch the epoch; the problem found now (and logged, and written as an event),
        or None."""
        mark = await self._backend.touch_epoch(uuid.uuid4().hex, self.epoch)
        problem = None
        if self.epoch is not None and mark.epoch != self.epoch:
            problem = (
                f"the backend lost its state: deployment epoch {self.epoch} is gone (now "
                f"{mark.epoch}); tasks, workflows and workers stored before are gone"
            )
        elif mark.mark < self.mark:
            problem = (
                f"the backend was rolled back: deployment epoch {mark.epoch} is at mark "
                f"{mark.mark}, {self._who} saw {self.mark}; recent records may be gone"
            )
        self.epoch, self.mark = mark.epoch, mark.mark
        if problem is None:
            return None
        self.lost = problem
        log.error("%s: %s", self._who, problem)
        if mark.created or mark.lost_from is None:  # one event per loss: its finder's
            await self._backend.append_event(
                Event(
                    kind=EventKind.DEPLOYMENT_STATE_LOST,
                    worker_id=None,
                    message=f"{self._who}: {problem}",
                    data={"epoch": mark.epoch, "lost_epoch": mark.lost_from or self.epoch},
                )
            )
        return problem
