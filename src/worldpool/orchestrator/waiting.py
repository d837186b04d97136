"""Why a task waits, written where users look (its pending reason, its recorded
explanation): :class:`WaitNotes`, used by the dispatcher's passes."""

from __future__ import annotations

from collections import deque
from collections.abc import Set

from worldpool.backends.base import Backend
from worldpool.models import EventKind, RoutingDecision, TaskRecord
from worldpool.orchestrator.records import RecordCache
from worldpool.orchestrator.signals import Changes
from worldpool.orchestrator.transitions import Transitions

# A waiting task's recorded explanation is redone at most this often (the pool moves on).
EXPLAIN_AGAIN_S = 5.0
EXPLAINED_MAX = 100_000
# A task waiting for a slot says so once it has waited this long; at most this many a pass.
WAIT_NOTED_AFTER_S = 1.0
WAIT_NOTES_PER_PASS = 50
# The queue's drain rate is what the passes sent over this window.
DRAIN_WINDOW_S = 5.0


class WaitNotes:
    """The pending reasons of waiting tasks; owns when each was last explained."""

    def __init__(
        self,
        backend: Backend,
        records: RecordCache,
        changes: Changes,
        transitions: Transitions,
    ) -> None:
        self._backend = backend
        self._records = records
        self._changes = changes
        self._transitions = transitions
        self._explained: dict[str, float] = {}  # waiting task -> when it was last explained
        self._sent: deque[tuple[float, int]] = deque()  # (when, how many) a pass sent

    def sent(self, now: float, count: int) -> None:
        """A pass sent ``count`` tasks at ``now`` (the queue's drain rate)."""
        if count:
            self._sent.append((now, count))
        while self._sent and now - self._sent[0][0] > DRAIN_WINDOW_S:
            self._sent.popleft()

    def _leaving_within_notice(self) -> float:
        """How many of the queue's head the drain rate sends within WAIT_NOTED_AFTER_S: in
        a burst the head of the queue moves on within milliseconds, and writing their
        reasons would only cost a record write per task."""
        return sum(count for _, count in self._sent) / DRAIN_WINDOW_S * WAIT_NOTED_AFTER_S

    def due(self, task_id: str, now: float) -> bool:
        """Whether a waiting task's explanation is due: its first pass, then every
        EXPLAIN_AGAIN_S (the table forgets old entries: at worst one more explanation)."""
        last = self._explained.get(task_id)
        if last is not None and now - last < EXPLAIN_AGAIN_S:
            return False
        if len(self._explained) >= EXPLAINED_MAX:
            self._explained.clear()
        self._explained[task_id] = now
        return True

    async def busy(
        self, waiting: list[TaskRecord], now: float, kept_back: Set[str] = frozenset()
    ) -> None:
        """Tasks that fit but find every fitting worker busy (in queue order) say so in
        their pending reason, with their place among them, once they have waited
        WAIT_NOTED_AFTER_S (and again every EXPLAIN_AGAIN_S), at most WAIT_NOTES_PER_PASS a
        pass, in one backend call; not those the queue's drain rate sends within that
        time. Their full explanation is computed on demand (``explain_task``): a backlog
        costs no routing report per task. Tasks in ``kept_back`` are not interactive and
        may not take the free slots the policy keeps for interactive work
        (``RoutingPolicy.interactive_reserve``)."""
        notes: list[tuple[TaskRecord, int | None]] = []
        leaving = self._leaving_within_notice()
        for place, record in enumerate(waiting, 1):
            if len(notes) >= WAIT_NOTES_PER_PASS:
                break
            if place < leaving or now - record.submitted_at < WAIT_NOTED_AFTER_S:
                continue
            kept = " or keeps its last free slots for interactive work" * (record.id in kept_back)
            reason = (
                f"waiting for a free slot: every worker that fits is busy{kept} "
                f"({_nth(place)} in the queue)"
            )
            if record.pending_reason == reason or not self.due(record.id, now):
                continue
            notes.append((record.model_copy(update={"pending_reason": reason}), record.version))
        if not notes:
            return
        for (update, _), ok in zip(notes, await self._backend.put_tasks(notes), strict=True):
            if ok:
                self._records.put(update)
            else:
                self._records.drop(update.id)

    async def unschedulable(
        self, record: TaskRecord, decision: RoutingDecision, now: float
    ) -> None:
        """Record why no worker can take ``record`` (the full ``decision``), and say so
        in one event (not for a task holding out for its sticky worker)."""
        reason = decision.suggestion or "; ".join(decision.reasons) or "no worker available"
        if decision.waiting_for_affinity:
            reason = "; ".join(decision.reasons) or "waiting for its sticky worker"
        if record.pending_reason == reason:
            return
        update = record.model_copy(update={"pending_reason": reason, "decision": decision})
        if await self._transitions.put(update, expect_version=record.version):
            if not decision.waiting_for_affinity:
                await self._transitions.emit(
                    EventKind.TASK_UNSCHEDULABLE, update, message=reason, at=now
                )
            self._changes.notify()


def _nth(place: int) -> str:
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"{place}{suffix}"
