"""Who waits for what: one reader of the event log per client wakes the waiters of the
tasks and workflows whose events arrive (a push, not a re-read of records)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable

from worldpool.backends.base import Backend, PushedRecord
from worldpool.errors import BackendError
from worldpool.event_log import cancel_checkpoint, tail_seq
from worldpool.models import EventKind, JSONValue, TaskRecord
from worldpool.orchestrator.signals import settle, wait_settled

log = logging.getLogger("worldpool.client")

# Events after which a waiter looks at its record again.
WAKING = frozenset(
    {
        EventKind.TASK_STARTED,
        EventKind.TASK_PROGRESS,
        EventKind.TASK_SUCCEEDED,
        EventKind.TASK_FAILED,
        EventKind.TASK_RETRYING,
        EventKind.TASK_CANCELLED,
        EventKind.TASK_TIMED_OUT,
        EventKind.TASK_DEAD_LETTERED,
        EventKind.WORKFLOW_SUCCEEDED,
        EventKind.WORKFLOW_FAILED,
        EventKind.WORKFLOW_CANCELLED,
        EventKind.DEPLOYMENT_STATE_LOST,
    }
)
BLOCK_S = 1.0
RETRY_S = 0.5  # after a backend error, before reading again


class Waiters:
    """Who waits for news of which id: a future each, settled by :meth:`wake` (a future
    and a timer per wait: ``asyncio.wait_for`` would make a task per waiting handle)."""

    def __init__(self) -> None:
        self._futures: dict[str, list[asyncio.Future[None]]] = {}

    async def wait(self, ident: str, timeout_s: float) -> None:
        """Until ``ident`` is woken or ``timeout_s`` passes."""
        futures = self._futures.setdefault(ident, [])
        try:
            await wait_settled(futures, timeout_s)
        finally:
            if not futures and self._futures.get(ident) is futures:
                del self._futures[ident]

    def wake(self, ident: str | None) -> None:
        for future in self._futures.pop(ident or "", ()):
            settle(future)

    def wake_all(self) -> None:
        for ident in list(self._futures):
            self.wake(ident)


async def _stopped(task: asyncio.Task[None] | None) -> None:
    """Cancel a reader and wait for it to end."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Follower:
    """Reads the event log from its tail at start; :meth:`changed` waits for the next
    event about an id (or about the whole deployment losing its state)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._waiters = Waiters()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Lock()

    async def start(self) -> None:
        async with self._started:
            if self._task is None:
                cursor = await tail_seq(self._backend)
                self._task = asyncio.create_task(self._run(cursor), name="worldpool-client")

    async def stop(self) -> None:
        await _stopped(self._task)
        self._task = None

    async def changed(self, ident: str, timeout_s: float) -> None:
        """Wait until an event about ``ident`` arrives or ``timeout_s`` passes."""
        await self.start()
        await self._waiters.wait(ident, timeout_s)

    async def _run(self, cursor: str | None) -> None:
        while True:
            cancel_checkpoint()
            try:
                page = await self._backend.read_events_of(WAKING, cursor, 500, BLOCK_S)
            except (BackendError, ConnectionError, OSError) as exc:
                log.warning("client: cannot read events (%s); retrying", exc)
                await asyncio.sleep(RETRY_S)
                continue
            cursor = page.cursor or cursor
            for event in page.events:
                if event.kind is EventKind.DEPLOYMENT_STATE_LOST:
                    self._waiters.wake_all()
                self._waiters.wake(event.task_id)
                self._waiters.wake(event.workflow_id)


ENDED_KEPT = 10_000  # pushed records not yet taken by a handle: the oldest are dropped


class Replies:
    """This client's reply stream: the final record of each task it submitted is pushed
    there by the write that ends the task (``TaskSpec.reply_to``), so a waiter returns
    with it at once, without reading the record or the event log. Read from the stream's
    start (the client's id is new, so it holds only this client's tasks)."""

    def __init__(self, backend: Backend, client_id: str) -> None:
        self.client_id = client_id
        self._backend = backend
        self._ended: OrderedDict[str, PushedRecord] = OrderedDict()
        self._waiters = Waiters()
        self._listeners: list[Callable[[str], None]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading (before the first submit, so no reply can be missed)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="worldpool-client-replies")

    async def stop(self) -> None:
        await _stopped(self._task)
        self._task = None

    def on_reply(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the id of every task whose record is pushed (the client
        gives back its slots)."""
        self._listeners.append(listener)

    def take(self, task_id: str) -> TaskRecord | None:
        """The pushed final record of ``task_id`` (once), or None if none came yet (or
        what came is no record: the caller reads the stored one instead)."""
        pushed = self._ended.pop(task_id, None)
        if pushed is None:
            return None
        try:
            return pushed.record()
        except ValueError as exc:  # pydantic's ValidationError: not ours to trust blindly
            log.warning("client: the record pushed for %s does not decode: %s", task_id, exc)
            return None

    def take_value(self, task_id: str, newer_than: int) -> tuple[bool, JSONValue]:
        """``(True, value)``, taking it, if the pushed record of ``task_id`` (a version
        after ``newer_than``) is a success with its value inline; else ``(False, None)``
        and the pushed record stays for :meth:`take`."""
        pushed = self._ended.get(task_id)
        if pushed is None or pushed.version <= newer_than:
            return False, None
        found, value = pushed.succeeded_value()
        if found:
            del self._ended[task_id]
        return found, value

    async def changed(self, task_id: str, timeout_s: float) -> bool:
        """Wait until the final record of ``task_id`` is pushed (True) or ``timeout_s``."""
        if task_id not in self._ended:
            await self._waiters.wait(task_id, timeout_s)
        return task_id in self._ended

    async def _run(self) -> None:
        cursor: str | None = None
        while True:
            cancel_checkpoint()
            try:
                page = await self._backend.read_replies(self.client_id, cursor, 500, BLOCK_S)
            except (BackendError, ConnectionError, OSError) as exc:
                log.warning("client: cannot read its replies (%s); retrying", exc)
                await asyncio.sleep(RETRY_S)
                continue
            cursor = page.cursor or cursor
            for pushed in page.replies:
                self._ended[pushed.task_id] = pushed
                self._ended.move_to_end(pushed.task_id)
                for listener in self._listeners:
                    listener(pushed.task_id)
                self._waiters.wake(pushed.task_id)
            while len(self._ended) > ENDED_KEPT:
                self._ended.popitem(last=False)
