"""Which worker reports count: a report must be signed with the key of the worker it names
(:mod:`worldpool.identity`), and that worker must be the one that was sent the attempt it
reports on. Anything else is rejected, dead-lettered with a reason code and recorded as a
``security.rejected`` event; the caller acknowledges it with the rest of its batch.

Cost on the hot path: one HMAC-SHA256 per report (keys derived once per worker and
cached), no Redis round trip unless a report is rejected.
"""

from __future__ import annotations

import logging

from worldpool.backends.base import Backend
from worldpool.identity import registration_valid, result_signed_by
from worldpool.models import Event, EventKind, TaskRecord, TaskResult, Worker

log = logging.getLogger("worldpool.orchestrator.trust")


class ReportGate:
    """Signature and holder checks of reports; refusal of workers with a bad credential."""

    def __init__(self, backend: Backend, secret: str | None, *, refuses: bool = True) -> None:
        self._backend = backend
        self._secret = secret
        self._refuses = refuses  # False: only check (a client's view; serve refuses)
        self._refused: set[tuple[str, str | None]] = set()  # (worker, proof) seen bad
        self._admitted: set[tuple[str, str | None]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    def unsigned(self, results: list[TaskResult]) -> tuple[list[TaskResult], list[TaskResult]]:
        """(signed by the worker each names, the rest)."""
        if not self._secret:
            return results, []
        good: list[TaskResult] = []
        bad: list[TaskResult] = []
        for result in results:
            (good if result_signed_by(result, self._secret) else bad).append(result)
        return good, bad

    @staticmethod
    def not_holder(record: TaskRecord, result: TaskResult) -> bool:
        """A signed report on an attempt its signer was never sent (another worker's task)."""
        for attempt in record.attempts:
            if attempt.attempt == result.attempt:
                return attempt.worker_id != result.worker_id
        return True  # an attempt that was never dispatched

    async def reject(self, result: TaskResult, code: str, reason: str) -> None:
        """Dead-letter and record one refused report (best effort: never stalls results)."""
        log.warning(
            "rejected a %s report on %s attempt %s claiming worker %s: %s",
            result.status.value,
            result.task_id,
            result.attempt,
            result.worker_id,
            reason,
        )
        event = Event(
            kind=EventKind.SECURITY_REJECTED,
            task_id=result.task_id,
            worker_id=result.worker_id,
            attempt=result.attempt,
            message=reason,
            data={"code": code, "status": result.status.value},
        )
        try:
            await self._backend.dead_letter(
                result.worker_id, code, reason, result.model_dump_json().encode()
            )
            await self._backend.append_events([event])
        except Exception:
            log.exception("could not record a rejected report")

    async def admit(self, worker: Worker) -> bool:
        """Whether ``worker`` proved its credential (refusing it, once, if not)."""
        if not self._secret:
            return True
        proof = worker.profile.credential_proof
        seen = (worker.id, proof)
        if seen in self._admitted:
            return True
        if seen in self._refused:
            return False
        if registration_valid(worker.id, proof, self._secret):
            self._admitted.add(seen)
            return True
        self._refused.add(seen)
        if not self._refuses:
            return False
        what = "no credential" if not proof else "a wrong credential"
        reason = (
            f"worker registered with {what} [proof {(proof or 'none')[:12]}]: it must be "
            "started with the key `worldpool credential WORKER_ID` prints for its id"
        )
        log.error("refused worker %s: %s", worker.id, reason)
        try:
            await self._backend.refuse_worker(worker.id, reason)
            await self._backend.append_events(
                [
                    Event(
                        kind=EventKind.SECURITY_REJECTED,
                        worker_id=worker.id,
                        message=reason,
                        data={"code": "bad_credential"},
                    )
                ]
            )
        except Exception:
            log.exception("could not record the refusal of worker %s", worker.id)
            self._refused.discard(seen)  # try again at the next refresh
        return False
