"""Server-Sent Events: every event of one workflow, or of the whole deployment.

Each SSE message is one :class:`~worldpool.models.Event` plus the *current* status
document of its workflow (``{"event": ..., "status": ...}``), with ``id:`` = the event's
backend ``seq``. A client that reconnects with ``Last-Event-ID`` (browsers do it on their
own) gets every event after that id replayed from the backend's event log, so it misses
nothing the log still holds; if the log was trimmed past that id, a ``snapshot`` message
(``gap: true``) carries the current state first.

A fresh connection (no ``Last-Event-ID``) gets a ``snapshot`` message (whose id is the
log's tail, so a later resume starts there) and then live events.

Per connection: one event-log reader, at most ``sse_batch`` events and one status
document per workflow per batch in memory, a ``: ping`` comment every ``sse_ping_s``, and
a send timeout that drops stuck clients. At most ``max_streams`` connections at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from worldpool.api.errors import ApiError
from worldpool.api.routers.tasks import ERRORS
from worldpool.api.state import ApiState, State
from worldpool.backends.base import Backend
from worldpool.errors import NotFoundError, ValidationError
from worldpool.event_log import cancel_checkpoint, tail_seq
from worldpool.models import Event, WorkflowStatus

router = APIRouter(tags=["events"], responses=ERRORS)

_SEQ_RE = re.compile(r"^[0-9][0-9-]{0,63}$")
_POLL_S = 1.0  # how long one read of the event log blocks; bounds shutdown latency
# Once caught up, a stream lets events gather this long before it reads again: a person
# cannot tell, and a wake per event per viewer would tax every task's fast path.
_PACE_S = 0.05
_SEND_TIMEOUT_S = 30.0
_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "an SSE stream"}
}

LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="resume after this event id (seq)"),
]
AfterQuery = Annotated[
    str | None,
    Query(max_length=64, description="resume after this event id (for clients without headers)"),
]


@router.get("/api/v1/events", response_class=EventSourceResponse, responses=_SSE_DOC)
async def deployment_events(
    request: Request, api: State, last_event_id: LastEventId = None, after: AfterQuery = None
) -> EventSourceResponse:
    """Every event of the deployment (workers, tasks, workflows), live."""
    return await _respond(api, request, None, _cursor(last_event_id, after))


@router.get(
    "/api/v1/workflows/{workflow_id}/events", response_class=EventSourceResponse, responses=_SSE_DOC
)
async def workflow_events(
    workflow_id: str,
    request: Request,
    api: State,
    last_event_id: LastEventId = None,
    after: AfterQuery = None,
) -> EventSourceResponse:
    """Every event of one workflow, each with its new status document, live."""
    await api.orchestrator.get_workflow(workflow_id)  # 404 before the stream starts
    return await _respond(api, request, workflow_id, _cursor(last_event_id, after))


def _cursor(header: str | None, query: str | None) -> str | None:
    value = (header or query or "").strip() or None
    if value is not None and not _SEQ_RE.match(value):
        raise ApiError(422, f"Last-Event-ID {value!r} is not an event id; drop it to start fresh")
    if value is not None and not _in_range(value):
        raise ApiError(
            400,
            f"Last-Event-ID {value[:64]!r} is out of range (an event id is N or N-M, each "
            "part below 2**64); drop it to start fresh",
        )
    return value


def _in_range(seq: str) -> bool:
    """An id either backend can read after: ``N`` (memory) or ``N-M`` (Redis streams),
    each part an unsigned 64-bit number; anything else would fail the read mid-stream."""
    parts = seq.split("-")
    return len(parts) <= 2 and all(p.isdigit() and int(p) < 2**64 for p in parts)


async def _respond(
    api: ApiState, request: Request, workflow_id: str | None, cursor: str | None
) -> EventSourceResponse:
    if cursor is not None:  # one read now: a cursor this backend cannot read is a 400 here,
        try:  # not a traceback once the stream has started
            await api.orchestrator.backend.read_events(after=cursor, limit=1)
        except ValidationError as exc:
            raise ApiError(400, f"Last-Event-ID {cursor[:64]!r} is out of range: {exc}") from None
    if api.open_streams >= api.max_streams:
        raise ApiError(503, f"{api.max_streams} event streams are open; retry later", "busy")
    api.open_streams += 1  # counted when accepted, so a burst cannot overshoot the cap
    return EventSourceResponse(
        _counted(api, stream(api, workflow_id, cursor)),
        ping=api.sse_ping_s,
        send_timeout=_SEND_TIMEOUT_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def stream(
    api: ApiState, workflow_id: str | None, cursor: str | None
) -> AsyncIterator[ServerSentEvent]:
    """The SSE messages for one connection (see the module docstring)."""
    backend = api.orchestrator.backend
    if cursor is None:
        cursor = await tail_seq(backend)
        yield await _snapshot(api, workflow_id, cursor, gap=False)
    elif await _trimmed_past(backend, cursor):
        yield await _snapshot(api, workflow_id, None, gap=True)
    while True:
        cancel_checkpoint()
        events = await backend.read_events(after=cursor, limit=api.sse_batch, block_s=_POLL_S)
        statuses: dict[str, WorkflowStatus | None] = {}
        for event in events:
            cursor = event.seq or cursor
            if workflow_id is not None and event.workflow_id != workflow_id:
                continue
            status = None
            if event.workflow_id:
                if event.workflow_id not in statuses:
                    statuses[event.workflow_id] = await _status(api, event.workflow_id)
                status = statuses[event.workflow_id]
            yield _message(event, status)
        if 0 < len(events) < api.sse_batch:  # caught up: let the next events gather
            await asyncio.sleep(_PACE_S)


async def _counted(
    api: ApiState, inner: AsyncIterator[ServerSentEvent]
) -> AsyncIterator[ServerSentEvent]:
    """Give the stream's place back when the connection ends, however it ends."""
    try:
        async for message in inner:
            yield message
    finally:
        api.open_streams -= 1


def _message(event: Event, status: WorkflowStatus | None) -> ServerSentEvent:
    body: dict[str, Any] = {
        "event": event.model_dump(mode="json"),
        "status": status.model_dump(mode="json") if status else None,
    }
    return ServerSentEvent(orjson.dumps(body).decode(), event=event.kind.value, id=event.seq)


async def _snapshot(
    api: ApiState, workflow_id: str | None, cursor: str | None, *, gap: bool
) -> ServerSentEvent:
    status = await _status(api, workflow_id) if workflow_id else None
    body = {"gap": gap, "status": status.model_dump(mode="json") if status else None}
    return ServerSentEvent(orjson.dumps(body).decode(), event="snapshot", id=cursor)


async def _status(api: ApiState, workflow_id: str) -> WorkflowStatus | None:
    try:
        return await api.orchestrator.workflow_status(workflow_id)
    except NotFoundError:
        return None


async def _trimmed_past(backend: Backend, cursor: str) -> bool:
    """True if the log's oldest event is newer than ``cursor``: some may be gone."""
    oldest = await backend.read_events(after=None, limit=1)
    if not oldest or oldest[0].seq is None:
        return False
    seq = oldest[0].seq
    return len(seq) == len(cursor) and seq > cursor and not _adjacent(cursor, seq)


def _adjacent(before: str, after: str) -> bool:
    """``after`` is the very next numeric seq (the memory backend's "%020d" shape)."""
    return before.isdigit() and after.isdigit() and int(after) == int(before) + 1
