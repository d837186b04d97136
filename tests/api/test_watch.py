"""`worldpool watch`: the live terminal view, in-process and over the API's SSE stream."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tests.api.support import ADMIN, build_app, demo_workflow, serving
from worldpool.cli.watch import ApiClient, iter_sse, render_live, watch
from worldpool.errors import NotFoundError
from worldpool.models import WorkflowState
from worldpool.testing import EmbeddedPool


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=160, force_terminal=False), out


async def test_watch_in_process_until_the_workflow_ends(pool: EmbeddedPool) -> None:
    await pool.orchestrator.submit_workflow(demo_workflow("wf-watch", nap_s=0.05))
    con, out = console()
    final = await watch(pool.orchestrator, "wf-watch", console=con)
    assert final.status is WorkflowState.SUCCEEDED
    text = out.getvalue()
    for word in ("plan", "report", "succeeded", "regions", "total $"):
        assert word in text


async def test_watch_over_http_follows_sse(pool: EmbeddedPool) -> None:
    await pool.orchestrator.submit_workflow(demo_workflow("wf-watch-http", nap_s=0.1))
    async with serving(build_app(pool)) as url, ApiClient(url, ADMIN) as client:
        con, out = console()
        final = await watch(client, "wf-watch-http", console=con)
    assert final.status is WorkflowState.SUCCEEDED
    assert "report" in out.getvalue()


def test_render_live_shows_eta_and_errors() -> None:
    from worldpool.models import StepStatus, WorkflowStatus

    status = WorkflowStatus(
        id="wf",
        name="n",
        status=WorkflowState.IN_PROGRESS,
        submitted_at=0.0,
        estimated_completion_sec=12.0,
        error="step x failed",
        steps=[StepStatus(step="a", status="running", worker="w1", region="eu-west-1")],
    )
    con, out = console()
    con.print(render_live(status, now=5.0))
    text = out.getvalue()
    assert "ETA 12s" in text and "a@w1" in text and "step x failed" in text


async def test_sse_parser_handles_comments_multiline_and_ids() -> None:
    async def lines():  # type: ignore[no-untyped-def]
        for line in [
            ": ping",
            "event: e1",
            "id: 7",
            'data: {"a":',
            "data: 1}",
            "",
            "data: plain",
            "",
            "retry: 5",
            "",
        ]:
            yield line

    got = [m async for m in iter_sse(lines())]
    assert [(m.event, m.id) for m in got] == [("e1", "7"), ("message", None)]
    assert got[0].json() == {"a": 1}


async def test_unknown_workflow_over_http_is_not_found(pool: EmbeddedPool) -> None:
    async with serving(build_app(pool)) as url, ApiClient(url, ADMIN) as client:
        with pytest.raises(NotFoundError):
            await client.workflow_status("nope")
