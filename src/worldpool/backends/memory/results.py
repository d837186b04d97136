"""The memory backend's results stream, read by consumers that can restart or die.

A :class:`ResultsReader` is one client's view: it hands a consumer back what it took and
never acked before a restart (in order, before anything new), then takes over results
another consumer left unacked too long (it died), then waits for new ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from worldpool.backends.base import ResultMessage
from worldpool.backends.memory.store import MemoryStore, clone


class ResultsReader:
    """The results consumers of one client of ``store`` (a ``reconnect`` makes another)."""

    def __init__(
        self, store: MemoryStore, clock: Callable[[], float], claim_after_s: float
    ) -> None:
        self._s = store
        self._clock = clock
        self._claim_after_s = claim_after_s
        # Consumers of this client that have drained their pre-existing backlog;
        # ``_recovery`` is how far each one got through it.
        self._recovered: set[str] = set()
        self._recovery: dict[str, str] = {}

    async def take(self, consumer: str, max_count: int, block_s: float) -> list[ResultMessage]:
        """The backlog first, then stale results of others, then new ones (waited for)."""
        s = self._s
        if consumer not in self._recovered:
            after = self._recovery.get(consumer, "")
            backlog = _oldest(
                (m for c, m in s.results_pending.values() if c == consumer and m.id > after),
                max_count,
            )
            if backlog:
                self._recovery[consumer] = backlog[-1].id
                return [_copy(m) for m in backlog]
            self._recovered.add(consumer)
            self._recovery.pop(consumer, None)
        claimed = self._claim_stale(consumer, max_count)
        if claimed:
            return claimed
        await s.results_signal.wait_until(lambda: bool(s.results_new), block_s)
        taken: list[ResultMessage] = []
        while s.results_new and len(taken) < max_count:
            taken.append(s.results_new.popleft())
        self._hold(consumer, taken)
        return [_copy(m) for m in taken]

    def ack(self, ids: list[str]) -> None:
        for message_id in ids:
            self._s.results_pending.pop(message_id, None)
            self._s.results_taken_at.pop(message_id, None)

    def _claim_stale(self, consumer: str, max_count: int) -> list[ResultMessage]:
        """Results another consumer took and left unacked too long (it died): ours now."""
        s = self._s
        cutoff = self._clock() - self._claim_after_s
        stale = _oldest(
            (
                m
                for c, m in s.results_pending.values()
                if c != consumer and s.results_taken_at.get(m.id, 0.0) <= cutoff
            ),
            max_count,
        )
        self._hold(consumer, stale)
        return [_copy(m) for m in stale]

    def _hold(self, consumer: str, messages: list[ResultMessage]) -> None:
        """``consumer`` has taken ``messages`` now: pending until acked."""
        now = self._clock()
        for message in messages:
            self._s.results_pending[message.id] = (consumer, message)
            self._s.results_taken_at[message.id] = now


def _oldest(messages: Iterable[ResultMessage], limit: int) -> list[ResultMessage]:
    return sorted(messages, key=lambda m: m.id)[:limit]


def _copy(message: ResultMessage) -> ResultMessage:
    return ResultMessage(id=message.id, result=clone(message.result))
