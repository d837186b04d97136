"""Handles on submitted work: await the result, read the status, cancel, retry, logs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from worldpool.artifacts.results import task_value
from worldpool.errors import CancelledError, TaskFailedError, WorldpoolError
from worldpool.models import (
    JSONValue,
    TaskRecord,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from worldpool.workflow.naming import step_task_id

if TYPE_CHECKING:
    from worldpool.client.core import Client

T = TypeVar("T")
RECHECK_S = 5.0  # a safety net only: waiters are woken by events, not by re-reading


class ResultTimeout(WorldpoolError, TimeoutError):
    """The task or workflow had not ended when the caller stopped waiting."""

    def __init__(self, ident: str, timeout_s: float, status: str) -> None:
        super().__init__(f"{ident} had not ended after {timeout_s:g}s (it is {status})")
        self.ident = ident
        self.timeout_s = timeout_s
        self.status = status


class TaskHandle(Generic[T]):
    """One task of a deployment (or of an embedded pool). ``result()`` is its JSON value,
    or a typed handler's output model (``decode``)."""

    def __init__(
        self,
        client: Client,
        task_id: str,
        decode: Callable[[JSONValue], T] | None = None,
        *,
        pushed: bool = False,
    ) -> None:
        self._client = client
        self.task_id = task_id
        self._decode = decode
        self._pushed = pushed  # its final record is pushed to this client (reply_to)
        self._ended_before = 0  # a pushed record up to this version is an earlier end

    def __repr__(self) -> str:
        return f"TaskHandle({self.task_id!r})"

    @property
    def pushed(self) -> bool:
        """Whether the task's final record is pushed to this handle's client."""
        return self._pushed

    async def status(self) -> TaskRecord:
        """The task's record as of now (status, attempts, result, logs, routing)."""
        return await self._client.orchestrator.get_task(self.task_id)

    async def wait(self, timeout_s: float = 60.0) -> TaskRecord:
        """The task's record once it has ended, whatever the end (ResultTimeout if not)."""
        deadline = time.monotonic() + timeout_s
        replies = self._client.replies
        while True:
            if self._pushed:  # the record comes to us: read it only as a safety net
                pushed = replies.take(self.task_id)
                if pushed is not None and pushed.version > self._ended_before:
                    return pushed
                left = deadline - time.monotonic()
                if left > 0 and await replies.changed(self.task_id, min(left, RECHECK_S)):
                    continue
            record = await self.status()
            if record.status.terminal:
                return record
            left = deadline - time.monotonic()
            if left <= 0:
                raise ResultTimeout(self.task_id, timeout_s, record.status.value)
            if not self._pushed:
                await self._client.follower.changed(self.task_id, min(left, RECHECK_S))

    async def result(self, timeout_s: float = 60.0) -> T:
        """The task's value; TaskFailedError (the remote error, the attempts) if it failed,
        CancelledError if it was cancelled, ResultTimeout if it had not ended in time."""
        if self._pushed:  # the usual end, a success pushed to us: its value, nothing more
            deadline = time.monotonic() + timeout_s
            replies = self._client.replies
            if await replies.changed(self.task_id, min(timeout_s, RECHECK_S)):
                found, value = replies.take_value(self.task_id, self._ended_before)
                if found:
                    return self._decode(value) if self._decode is not None else cast("T", value)
            timeout_s = max(0.0, deadline - time.monotonic())
        record = await self.wait(timeout_s)
        if record.status is TaskStatus.SUCCEEDED:
            value = record.result if record.result_ref is None else await self.value(record)
            if self._decode is not None:
                return self._decode(value)
            return cast("T", value)
        if record.status is TaskStatus.CANCELLED:
            raise CancelledError(f"task {self.task_id} was cancelled: {record.error or ''}")
        raise TaskFailedError(record.id, record.error, attempts=len(record.attempts))

    async def value(self, record: TaskRecord) -> JSONValue:
        """``record``'s value: inline, or (too large for a record) fetched from the
        artifact store and checked against its digest."""
        return await task_value(self._client.orchestrator.artifacts, record)

    async def cancel(self) -> bool:
        """Cancel it; False if it had already ended."""
        return await self._client.orchestrator.cancel(self.task_id)

    async def retry(self) -> bool:
        """Queue a failed or cancelled task again (a fresh retry budget; a workflow's step:
        its workflow runs on from it). False if it had not failed or been cancelled."""
        ended = await self.status()  # the end it had is no longer its end, even if its
        self._ended_before = ended.version  # push comes only now
        self._client.replies.take(self.task_id)
        return bool(await self._client.orchestrator.retry(self.task_id))

    async def logs(self, follow: bool = False, timeout_s: float = 3600.0) -> AsyncIterator[str]:
        """The lines its handler logged; with ``follow``, also those still to come, until
        the task ends (lines arrive with each attempt's report)."""
        seen = 0
        deadline = time.monotonic() + timeout_s
        while True:
            record = await self.status()
            for line in record.logs[seen:]:
                yield line
            seen = max(seen, len(record.logs))
            left = deadline - time.monotonic()
            if not follow or record.status.terminal or left <= 0:
                return
            await self._client.follower.changed(self.task_id, min(left, RECHECK_S))


class WorkflowHandle:
    """One workflow: its status document, cancel, retry from the failed step."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self._client = client
        self.workflow_id = workflow_id

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

    async def status(self) -> WorkflowStatus:
        return await self._client.orchestrator.workflow_status(self.workflow_id)

    async def result(self, timeout_s: float = 300.0) -> WorkflowStatus:
        """The status document once the workflow has ended; TaskFailedError naming the
        failed step if it failed, ResultTimeout if it had not ended in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = await self.status()
            if status.status.terminal:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise ResultTimeout(self.workflow_id, timeout_s, status.status.value)
            await self._client.follower.changed(self.workflow_id, min(left, RECHECK_S))
        if status.status is WorkflowState.FAILED:
            failed = next((s for s in status.steps if s.status == TaskStatus.FAILED.value), None)
            raise TaskFailedError(
                failed.task_id if failed and failed.task_id else self.workflow_id,
                failed.error if failed else None,
                attempts=failed.attempts if failed else 0,
            )
        return status

    def step(self, name: str) -> TaskHandle[JSONValue]:
        """The handle of one step's task."""
        return TaskHandle(self._client, step_task_id(self.workflow_id, name))

    async def cancel(self) -> bool:
        return await self._client.orchestrator.cancel(self.workflow_id)

    async def retry(self) -> list[str]:
        """Run a failed or cancelled workflow on from its failed steps; the steps queued."""
        return await self._client.orchestrator.retry(self.workflow_id)
