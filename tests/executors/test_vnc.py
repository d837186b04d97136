"""VirtualDisplay against the real Xvfb and x11vnc; a headful browser step one can watch."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.executors.browser_site import login_site
from tests.executors.context import make_ctx
from tests.helpers import require_binary
from worldpool.executors.browser import BrowserConfig, run_browser
from worldpool.executors.vnc import VirtualDisplay


@pytest.fixture
def x_tools() -> None:
    require_binary("Xvfb", "xvfb")
    require_binary("x11vnc", "x11vnc")


async def rfb_greeting(host: str, port: int) -> bytes:
    """The first 12 bytes a VNC server sends: its protocol version, e.g. b'RFB 003.008\\n'."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return await asyncio.wait_for(reader.readexactly(12), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_display_serves_vnc_and_stops_cleanly(x_tools: None) -> None:
    async with VirtualDisplay(width=640, height=480) as display:
        assert display.display is not None and display.display.startswith(":")
        assert display.vnc_url == f"vnc://127.0.0.1:{display.vnc_port}"
        assert display.vnc_port is not None
        greeting = await rfb_greeting("127.0.0.1", display.vnc_port)
        assert greeting.startswith(b"RFB 003.00") and greeting.endswith(b"\n")
        number = display.display[1:]
        assert Path(f"/tmp/.X11-unix/X{number}").is_socket()  # noqa: ASYNC240
        port = display.vnc_port
    assert display.vnc_url is None
    with pytest.raises(OSError):
        await rfb_greeting("127.0.0.1", port)


async def test_two_displays_get_different_numbers_and_ports(x_tools: None) -> None:
    async with VirtualDisplay(vnc=False) as a, VirtualDisplay() as b:
        assert a.display != b.display
        assert a.vnc_url is None and b.vnc_port is not None


def test_public_host_goes_into_the_url() -> None:
    display = VirtualDisplay(listen="0.0.0.0", public_host="browser-7.example.net")
    display.vnc_port = 5901
    assert display.vnc_url == "vnc://browser-7.example.net:5901"


async def test_headful_step_carries_a_watchable_vnc_url(x_tools: None) -> None:
    require_binary("chromium", "chromium")
    with login_site() as site:
        # The step waits in the page for a while so a viewer can connect meanwhile.
        ctx = make_ctx(
            {
                "actions": [
                    {"action": "goto", "url": f"{site}/login"},
                    {
                        "action": "evaluate",
                        "expression": "new Promise(r => setTimeout(() => r(1), 4000))",
                    },
                    {"action": "screenshot", "name": "seen"},
                ]
            }
        )
        step = asyncio.create_task(run_browser(ctx, BrowserConfig(headful=True)))
        for _ in range(300):  # bounded: 30 s
            if "vnc_url" in ctx.meta or step.done():
                break
            await asyncio.sleep(0.1)
        url = urlsplit(str(ctx.meta["vnc_url"]))
        assert url.scheme == "vnc" and url.hostname == "127.0.0.1" and url.port
        assert (await rfb_greeting(url.hostname, url.port)).startswith(b"RFB 003.00")
        result = await step
    assert result["title"] == "Sign in"
    assert result["screenshots"] == ["seen.png"]
