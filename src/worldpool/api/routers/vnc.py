"""The live view of a running browser step in the dashboard: a WebSocket-to-VNC bridge.

Browsers cannot speak VNC's TCP protocol; the bundled noVNC (``static/vendor/novnc``)
speaks it over a WebSocket. ``GET /api/v1/tasks/{id}/vnc-ticket`` (read role, bearer
token in the header as for every API call) answers a one-time ticket, valid
:data:`TICKET_TTL_S` seconds, and ``WS /api/v1/tasks/{id}/vnc?ticket=...`` relays bytes
between the WebSocket and the ``vnc_url`` the running step published (a ticket, so the
token never appears in a URL). The bridge only ever dials the address in the task's
record, and only while the task runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from worldpool.api.errors import ApiError
from worldpool.api.schemas import ErrorBody
from worldpool.api.state import State
from worldpool.models import TaskRecord, TaskStatus

TICKET_TTL_S = 30.0
CHUNK = 64 * 1024
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404)
}
router = APIRouter(tags=["tasks"], responses=ERRORS)


class VncTicket(BaseModel):
    ticket: str
    expires_in_s: float
    websocket: str  # the path to open, ticket included


def _tickets(request: Request | WebSocket) -> dict[str, tuple[str, float]]:
    """ticket -> (task id, expiry), kept on the app (no module globals)."""
    state = request.app.state
    if not hasattr(state, "vnc_tickets"):
        state.vnc_tickets = {}
    tickets: dict[str, tuple[str, float]] = state.vnc_tickets
    return tickets


def _target(record: TaskRecord) -> tuple[str, int] | None:
    url = record.meta.get("vnc_url")
    if record.status is not TaskStatus.RUNNING or not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme != "vnc" or not parts.hostname or not parts.port:
        return None
    return parts.hostname, parts.port


@router.get("/api/v1/tasks/{task_id}/vnc-ticket", response_model=VncTicket)
async def vnc_ticket(task_id: str, request: Request, api: State) -> VncTicket:
    """A one-time ticket to watch the task's live browser (404 unless it has one now)."""
    record = await api.orchestrator.get_task(task_id)
    if _target(record) is None:
        raise ApiError(404, f"task {task_id!r} has no live VNC view now ({record.status.value})")
    tickets = _tickets(request)
    now = time.monotonic()
    for old in [t for t, (_, until) in tickets.items() if until < now]:
        del tickets[old]
    ticket = secrets.token_urlsafe(24)
    tickets[ticket] = (task_id, now + TICKET_TTL_S)
    return VncTicket(
        ticket=ticket,
        expires_in_s=TICKET_TTL_S,
        websocket=f"/api/v1/tasks/{task_id}/vnc?ticket={ticket}",
    )


@router.websocket("/api/v1/tasks/{task_id}/vnc")
async def vnc_bridge(websocket: WebSocket, task_id: str, ticket: str = "") -> None:
    """Relay the step's VNC stream (RFB) over this WebSocket while the step runs."""
    held = _tickets(websocket).pop(ticket, None)
    if held is None or held[0] != task_id or held[1] < time.monotonic():
        await websocket.close(code=4401, reason="no valid ticket: GET .../vnc-ticket first")
        return
    record = await websocket.app.state.api.orchestrator.backend.get_task(task_id)
    target = _target(record) if record is not None else None
    if target is None:
        await websocket.close(code=4404, reason="the step has no live VNC view now")
        return
    try:
        reader, writer = await asyncio.open_connection(*target)
    except OSError:
        await websocket.close(code=4502, reason="the VNC server does not answer")
        return
    wants = websocket.headers.get("sec-websocket-protocol", "")
    await websocket.accept(subprotocol="binary" if "binary" in wants else None)

    async def upstream() -> None:
        while data := await reader.read(CHUNK):
            await websocket.send_bytes(data)

    async def downstream() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            writer.write(data)
            await writer.drain()

    tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        with contextlib.suppress(Exception):
            await websocket.close()
