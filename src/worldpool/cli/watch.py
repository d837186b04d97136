"""``worldpool watch ID``: the live status of one workflow in the terminal (rich).

Two sources, one view:

* an :class:`~worldpool.orchestrator.core.Orchestrator` in this process (embedded mode, the
  demo): follows the backend's event log directly;
* an :class:`ApiClient` for a ``worldpool serve`` URL: follows the workflow's SSE stream,
  resuming with ``Last-Event-ID`` after a dropped connection, so no update is lost.

:func:`watch` redraws on every change and returns the final status document once the
workflow has ended. The table itself is :func:`worldpool.render.render_status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from worldpool.errors import BackendError, NotFoundError, ValidationError
from worldpool.event_log import cancel_checkpoint, tail_seq
from worldpool.models import WorkflowStatus
from worldpool.orchestrator.core import Orchestrator
from worldpool.render import cost_split, render_status

__all__ = [
    "ApiClient",
    "SseMessage",
    "follow_lines",
    "iter_sse",
    "render_live",
    "render_status",
    "watch",
]

_RECONNECTS_MAX = 20  # consecutive failed reconnects before giving up
_RECONNECT_DELAY_S = 0.5


@dataclass(frozen=True, slots=True)
class SseMessage:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data) if self.data else None


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[SseMessage]:
    """Parse a text/event-stream (comments and pings are skipped)."""
    event, ident = "message", None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield SseMessage(event, "\n".join(data), ident)
            event, data, ident = "message", [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            ident = value or None


class ApiClient:
    """A small client for a ``worldpool serve`` API (bearer token optional)."""

    def __init__(
        self, url: str, token: str | None = None, *, client: httpx.AsyncClient | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._client = client or httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(10.0, read=60.0)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def workflow_status(self, workflow_id: str) -> WorkflowStatus:
        response = await self._client.get(f"/api/v1/workflows/{workflow_id}")
        _raise_for(response, "workflow", workflow_id)
        return WorkflowStatus.model_validate_json(response.content)

    async def follow(self, workflow_id: str) -> AsyncGenerator[WorkflowStatus, None]:
        """Every new status document of the workflow, until it has ended."""
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with self._client.stream(
                    "GET", f"/api/v1/workflows/{workflow_id}/events", headers=headers
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        _raise_for(response, "workflow", workflow_id)
                    failures = 0
                    async for message in iter_sse(response.aiter_lines()):
                        last_id = message.id or last_id
                        status = (message.json() or {}).get("status")
                        if status is None:
                            continue
                        doc = WorkflowStatus.model_validate(status)
                        yield doc
                        if doc.status.terminal:
                            return
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                failures += 1
                if failures > _RECONNECTS_MAX:
                    raise BackendError(f"lost the event stream at {self.url}: {exc}") from exc
                await asyncio.sleep(_RECONNECT_DELAY_S)


def _raise_for(response: httpx.Response, kind: str, ident: str) -> None:
    if response.status_code == 404:
        raise NotFoundError(kind, ident)
    if response.status_code in (401, 403):
        raise ValidationError(
            f"the API refused the request ({response.status_code}): pass --token or set "
            "WORLDPOOL_API_TOKEN_READ"
        )
    if response.status_code >= 400:
        raise BackendError(f"API answered {response.status_code}: {response.text[:200]}")


async def follow_orchestrator(
    orch: Orchestrator, workflow_id: str
) -> AsyncGenerator[WorkflowStatus, None]:
    """Every new status document of a workflow in this process, until it has ended."""
    backend = orch.backend
    cursor = await tail_seq(backend)
    status = await orch.workflow_status(workflow_id)
    yield status
    while not status.status.terminal:
        cancel_checkpoint()
        events = await backend.read_events(after=cursor, limit=500, block_s=1.0)
        if events:
            cursor = events[-1].seq or cursor
        if not events or any(e.workflow_id == workflow_id for e in events):
            status = await orch.workflow_status(workflow_id)  # also refreshes durations
            yield status


def render_live(status: WorkflowStatus, now: float | None = None) -> Group:
    """The status table plus a footer: where the steps run, the total, the ETA."""
    now = time.time() if now is None else now
    regions = sorted({s.region for s in status.steps if s.region})
    running = [s for s in status.steps if s.status == "running"]
    elapsed = (status.ended_at or now) - status.submitted_at
    footer = Text.assemble(
        ("regions ", "dim"),
        ", ".join(regions) or "-",
        ("   running ", "dim"),
        ", ".join(f"{s.step}@{s.worker}" for s in running) or "-",
        ("   elapsed ", "dim"),
        f"{elapsed:.1f}s",
        ("   total ", "dim"),
        f"{cost_split(status)} / {status.total_tokens} tokens",
    )
    if status.estimated_completion_sec is not None and not status.status.terminal:
        footer.append(f"   ETA {status.estimated_completion_sec:.0f}s", style="bold")
    if status.error:
        footer.append(f"\nerror: {status.error}", style="bold red")
    return Group(render_status(status), footer)


async def watch(
    source: Orchestrator | ApiClient,
    workflow_id: str,
    *,
    console: Console | None = None,
    refresh_per_second: float = 4.0,
) -> WorkflowStatus:
    """Show the workflow live until it ends; returns its final status document."""
    updates = _updates(source, workflow_id)
    console = console or Console()
    status: WorkflowStatus | None = None
    with Live(console=console, refresh_per_second=refresh_per_second, transient=False) as live:
        try:
            async for status in updates:
                live.update(render_live(status))
        finally:
            with contextlib.suppress(Exception):
                await updates.aclose()
    if status is None:  # the stream ended before any document: ask once
        status = await source.workflow_status(workflow_id)
    return status


async def follow_lines(
    source: Orchestrator | ApiClient, workflow_id: str, out: TextIO | None
) -> WorkflowStatus:
    """Follow the workflow until it ends with no live view: each new status document as
    one JSON line on ``out`` (``watch --json``; None: print nothing, ``submit --json
    --wait``). Returns the final document."""
    updates = _updates(source, workflow_id)
    status: WorkflowStatus | None = None
    try:
        async for status in updates:
            if out is not None:
                out.write(status.model_dump_json() + "\n")
                out.flush()
    finally:
        with contextlib.suppress(Exception):
            await updates.aclose()
    if status is None:  # the stream ended before any document: ask once
        status = await source.workflow_status(workflow_id)
        if out is not None:
            out.write(status.model_dump_json() + "\n")
    return status


def _updates(
    source: Orchestrator | ApiClient, workflow_id: str
) -> AsyncGenerator[WorkflowStatus, None]:
    if isinstance(source, Orchestrator):
        return follow_orchestrator(source, workflow_id)
    return source.follow(workflow_id)
