"""The dashboard's live view: the bundled noVNC is served (no CDN), and the API bridges
a WebSocket to the VNC server of a running headful browser step, with a one-time ticket
bought with the bearer token; once the step has ended there is nothing to watch."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.support import READ, TOKENS, serving
from tests.executors.browser_site import login_site
from tests.helpers import require_binary
from worldpool.api.app import create_app
from worldpool.executors import browser
from worldpool.models import TaskSpec, TaskStatus
from worldpool.testing import EmbeddedPool, make_worker

AUTH = {"Authorization": f"Bearer {READ}"}


@pytest.fixture
def tools() -> None:
    for binary, package in (("Xvfb", "xvfb"), ("x11vnc", "x11vnc"), ("chromium", "chromium")):
        require_binary(binary, package)
    pytest.importorskip("playwright")
    pytest.importorskip("websockets")


async def test_the_dashboard_bridges_the_running_steps_vnc(tools: None) -> None:
    import websockets

    handlers = browser.handlers({"headful": True})
    worker = make_worker("browser-1", handlers=["browser"], capabilities=["browser_operations"])
    with login_site() as site:
        spec = TaskSpec(
            handler="browser",
            payload={
                "actions": [
                    {"action": "goto", "url": f"{site}/login"},
                    {
                        "action": "evaluate",
                        "expression": "new Promise(r => setTimeout(() => r(1), 3000))",
                    },
                ]
            },
        )
        async with EmbeddedPool(handlers, [worker]) as pool:
            app = create_app(pool.orchestrator, pool.settings, tokens=TOKENS)
            async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
                rfb_js = await http.get("/vendor/novnc/core/rfb.js")
                assert rfb_js.status_code == 200 and "export default class RFB" in rfb_js.text
                assert (await http.get(f"/api/v1/tasks/{spec.id}/vnc-ticket")).status_code == 401
                await pool.orchestrator.submit(spec)
                for _ in range(300):  # bounded: 30 s
                    record = await pool.orchestrator.get_task(spec.id)
                    if record.meta.get("vnc_url") or record.status.terminal:
                        break
                    await asyncio.sleep(0.1)
                assert record.status is TaskStatus.RUNNING, record
                reply = await http.get(f"/api/v1/tasks/{spec.id}/vnc-ticket", headers=AUTH)
                assert reply.status_code == 200, reply.text
                ws_url = url.replace("http://", "ws://") + reply.json()["websocket"]
                async with websockets.connect(ws_url, subprotocols=["binary"]) as ws:  # type: ignore[list-item]
                    greeting = await asyncio.wait_for(ws.recv(), 10)
                    assert isinstance(greeting, bytes) and greeting.startswith(b"RFB 003.00")
                # A ticket works once.
                with pytest.raises(websockets.exceptions.WebSocketException):
                    async with websockets.connect(ws_url) as again:
                        await again.recv()
                first = await pool.orchestrator.get_task(spec.id)
                for _ in range(300):
                    if first.status.terminal:
                        break
                    await asyncio.sleep(0.1)
                    first = await pool.orchestrator.get_task(spec.id)
                after = await http.get(f"/api/v1/tasks/{spec.id}/vnc-ticket", headers=AUTH)
                assert first.status is TaskStatus.SUCCEEDED
                assert after.status_code == 404 and first.meta.get("vnc_url") is None


async def test_the_dashboard_shows_the_running_step_in_page(tools: None) -> None:
    """In Chromium: the steps table offers "watch live" on the running browser step and the
    bundled noVNC connects in the page (a canvas, the RFB handshake done)."""
    from playwright.async_api import async_playwright

    from tests.e2e.test_dashboard import CHROMIUM_ARGS
    from worldpool.workflow.builder import Workflow

    chromium = require_binary("chromium", "chromium")
    handlers = browser.handlers({"headful": True})
    worker = make_worker("browser-1", handlers=["browser"], capabilities=["browser_operations"])
    with login_site() as site:
        wf = Workflow("watch-in-page")
        wf.step(
            "look",
            handler="browser",
            payload={
                "actions": [
                    {"action": "goto", "url": f"{site}/login"},
                    {
                        "action": "evaluate",
                        "expression": "new Promise(r => setTimeout(() => r(1), 8000))",
                    },
                ]
            },
        )
        spec = wf.build()
        async with EmbeddedPool(handlers, [worker]) as pool:
            app = create_app(pool.orchestrator, pool.settings, tokens=TOKENS)
            async with serving(app) as url, async_playwright() as p:
                viewer = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                try:
                    page = await viewer.new_page()
                    page.set_default_timeout(20_000)
                    await page.goto(url + "/")
                    await page.evaluate(f"localStorage.setItem('wp-token', {READ!r})")
                    await pool.orchestrator.submit_workflow(spec)
                    await page.goto(f"{url}/#/wf/{spec.id}")
                    await page.click("button[data-watch]")
                    await page.wait_for_selector("#vnc[data-state=connected]")
                    assert await page.locator("#vnc-screen canvas").count() == 1
                    await page.wait_for_selector("#vnc[data-state=ended]", timeout=30_000)
                finally:
                    await viewer.close()
