"""The live view while the step runs: a headful browser step on a worker publishes its
``vnc_url`` as soon as the session starts; the status document carries it while the step
runs (and a VNC client completes the RFB handshake on it then); it is gone after."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from tests.executors.browser_site import login_site
from tests.executors.test_vnc import rfb_greeting
from tests.helpers import require_binary
from worldpool.executors import browser
from worldpool.models import StepStatus
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.workflow.builder import Workflow


@pytest.fixture
def tools() -> None:
    for binary, package in (("Xvfb", "xvfb"), ("x11vnc", "x11vnc"), ("chromium", "chromium")):
        require_binary(binary, package)
    pytest.importorskip("playwright")


async def test_the_status_document_carries_the_vnc_url_while_the_step_runs(tools: None) -> None:
    handlers = browser.handlers({"headful": True})
    worker = make_worker("browser-1", handlers=["browser"], capabilities=["browser_operations"])
    with login_site() as site:
        wf = Workflow("watch-me")
        wf.step(
            "look",
            handler="browser",
            capabilities=["browser_operations"],
            payload={
                "actions": [
                    {"action": "goto", "url": f"{site}/login"},
                    {  # keep the session open so a viewer can connect meanwhile
                        "action": "evaluate",
                        "expression": "new Promise(r => setTimeout(() => r(1), 3000))",
                    },
                    {"action": "screenshot", "name": "seen"},
                ]
            },
        )
        spec = wf.build()
        async with EmbeddedPool(handlers, [worker]) as pool:
            await pool.orchestrator.submit_workflow(spec)
            live: StepStatus | None = None
            for _ in range(300):  # bounded: 30 s
                [step] = (await pool.orchestrator.workflow_status(spec.id)).steps
                if step.vnc_url or step.status in ("succeeded", "failed"):
                    live = step
                    break
                await asyncio.sleep(0.1)
            assert live is not None and live.status == "running", live
            url = urlsplit(str(live.vnc_url))
            assert url.scheme == "vnc" and url.hostname and url.port
            # A VNC client connects at that moment: the RFB handshake starts.
            assert (await rfb_greeting(url.hostname, url.port)).startswith(b"RFB 003.00")
            # Meanwhile the step keeps a last screenshot fresh, before it has ended.
            for _ in range(100):
                [step] = (await pool.orchestrator.workflow_status(spec.id)).steps
                if step.screenshot is not None or step.status != "running":
                    break
                await asyncio.sleep(0.1)
            assert step.status == "running" and step.screenshot is not None, step
            assert step.screenshot.name == "last-screenshot.png"
            png = await pool.artifacts.get(step.screenshot)
            assert png.startswith(b"\x89PNG")
            done = await pool.orchestrator.wait_workflow(spec.id, timeout_s=60)
    [step] = done.steps
    assert step.status == "succeeded" and step.vnc_url is None
    assert {"seen.png", "network.har", "trace.zip"} <= set(step.outputs)  # the artifacts stay
    with pytest.raises(OSError):  # the display is gone with the session
        await rfb_greeting(url.hostname, url.port)
