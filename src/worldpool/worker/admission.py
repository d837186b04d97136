"""What a worker lets start: each delivery checked on its own (signature with this
worker's key, bound to this worker, not expired, a known handler), then the good ones of
a batch claimed as started in one backend call, so a replayed envelope, also after this
worker restarts, never starts twice. And whether the orchestrator refused this worker's
credential. See docs/security.md."""

from __future__ import annotations

import time
from collections.abc import Container
from dataclasses import dataclass, field

from worldpool.backends.base import Backend, Delivery
from worldpool.config import Settings
from worldpool.envelope import decode_envelope
from worldpool.errors import EnvelopeError
from worldpool.models import Envelope

UNBOUNDED_CLAIM_S = 3600.0
"""How long a start claim lives for an envelope without an expiry (older orchestrators)."""


@dataclass
class Admitted:
    """A batch sorted: what may start, what is refused (and whether to tell the
    orchestrator: not for a replay, whose running attempt reports for itself)."""

    start: list[tuple[Delivery, Envelope]] = field(default_factory=list)
    refused: list[tuple[Delivery, EnvelopeError, bool]] = field(default_factory=list)


class Admission:
    """One worker's admission rules. ``key``: its credential (None: an unsigned
    deployment, where only the expiry and the in-process duplicate check apply)."""

    def __init__(
        self,
        backend: Backend,
        worker_id: str,
        key: str | None,
        settings: Settings,
        handlers: Container[str],
    ) -> None:
        self._backend = backend
        self._id = worker_id
        self._key = key
        self._settings = settings
        self._handlers = handlers

    def decode(self, delivery: Delivery) -> Envelope:
        return decode_envelope(
            delivery.data,
            secret=self._key,
            max_bytes=self._settings.max_envelope_bytes,
            handlers=self._handlers,
            worker_id=self._id,
        )

    async def admit(self, deliveries: list[Delivery], running: Container[str]) -> Admitted:
        """Sort a batch; ``running``: the task ids this worker runs now."""
        out = Admitted()
        good: list[tuple[Delivery, Envelope]] = []
        for delivery in deliveries:
            try:
                good.append((delivery, self.decode(delivery)))
            except EnvelopeError as exc:
                out.refused.append((delivery, exc, True))
        if not good:
            return out
        first = [True] * len(good)
        if self._key:  # signed deployments: no attempt starts twice (one round trip)
            now = time.time()
            first = await self._backend.claim_starts(
                self._id,
                [
                    (env.task_id, env.attempt, max(1.0, (env.expires_at or now + UNBOUNDED_CLAIM_S) - now))
                    for _, env in good
                ],
            )  # fmt: skip
        for (delivery, env), fresh in zip(good, first, strict=True):
            if fresh and env.task_id not in running:
                out.start.append((delivery, env))
            else:
                why = f"attempt {env.attempt} of {env.task_id} already started here"
                out.refused.append((delivery, EnvelopeError("replayed", why), False))
        return out

    async def refusal(self, proof: str | None) -> str | None:
        """Why the orchestrator refused this worker's current credential (None: it did
        not; a refusal of an earlier credential, since fixed, does not count)."""
        reason = await self._backend.worker_refusal(self._id)
        if reason is None or f"proof {(proof or 'none')[:12]}" not in reason:
            return None
        return reason
