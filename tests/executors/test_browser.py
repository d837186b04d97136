"""The browser handler against the system Chromium and a loopback login site."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import pytest

from tests.executors.browser_site import login_site
from tests.executors.context import make_ctx
from tests.helpers import require_binary
from worldpool.errors import ConfigError, HandlerError
from worldpool.executors import browser, browser_session
from worldpool.executors.browser import BrowserConfig, run_browser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def site() -> Iterator[str]:
    with login_site() as base:
        yield base


@pytest.fixture
def chromium() -> str:
    return require_binary("chromium", "chromium")


def login_actions(base: str) -> list[dict[str, object]]:
    return [
        {"action": "goto", "url": f"{base}/login"},
        {"action": "fill", "selector": "#user", "value": "alice"},
        {"action": "fill", "selector": "#password", "value": "s3cret"},
        {"action": "click", "selector": "#submit"},
        {"action": "wait_for", "text": "Welcome, alice!"},
        {"action": "evaluate", "expression": "document.querySelector('h1').textContent"},
        {"action": "screenshot", "name": "after-login"},
    ]


async def test_login_flow_returns_url_title_screenshot_console_and_har(
    chromium: str, site: str
) -> None:
    # Given the login page, when the step fills the form and submits it
    ctx = make_ctx({"actions": login_actions(site)})
    result = await run_browser(ctx, BrowserConfig())

    # Then the page moved on, and what the browser saw comes back
    assert result["final_url"] == f"{site}/welcome?user=alice"
    assert result["title"] == "Welcome alice"
    assert result["evaluations"] == ["Welcome, alice!"]
    assert {"type": "log", "text": "login page ready"} in result["console"]
    assert result["screenshots"] == ["after-login.png"]
    shot = ctx.staged["after-login.png"]
    assert shot.ref.media_type == "image/png" and shot.data.startswith(PNG_MAGIC)
    assert ctx.meta["screenshot"] == "after-login.png"
    har = json.loads(ctx.staged["network.har"].data)
    urls = [entry["request"]["url"] for entry in har["log"]["entries"]]
    assert f"{site}/login" in urls and f"{site}/session" in urls
    assert "trace.zip" not in ctx.staged  # traces only on failure by default
    assert ctx.progress == 1.0


async def test_bad_selector_fails_with_index_and_stores_trace(chromium: str, site: str) -> None:
    ctx = make_ctx(
        {
            "actions": [
                {"action": "goto", "url": f"{site}/login"},
                {"action": "click", "selector": "#no-such-button", "timeout_ms": 300},
            ]
        }
    )
    with pytest.raises(HandlerError) as info:
        await run_browser(ctx, BrowserConfig())
    assert "actions[1] (click '#no-such-button')" in str(info.value)
    assert "Timeout 300ms exceeded" in str(info.value)
    assert info.value.retryable is True  # a slow page may pass next time
    trace = ctx.staged["trace.zip"]
    assert trace.ref.media_type == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(trace.data)).namelist()  # a real zip
    assert ctx.staged["failure-screenshot.png"].data.startswith(PNG_MAGIC)
    assert "network.har" in ctx.staged


async def test_invalid_selector_syntax_is_not_retryable(chromium: str, site: str) -> None:
    ctx = make_ctx(
        {
            "actions": [
                {"action": "goto", "url": f"{site}/login"},
                {"action": "evaluate", "expression": "document.querySelector('##')"},
            ],
            "trace": "off",
        }
    )
    with pytest.raises(HandlerError) as info:
        await run_browser(ctx, BrowserConfig())
    assert str(info.value).startswith("actions[1] (evaluate")
    assert info.value.retryable is False
    assert "trace.zip" not in ctx.staged


async def test_unknown_action_fails_before_anything_launches() -> None:
    # A config whose browser does not exist proves nothing was launched.
    ctx = make_ctx({"actions": [{"action": "goto", "url": "http://x/"}, {"action": "hover"}]})
    with pytest.raises(HandlerError, match=r"actions\[1\]: unknown action 'hover'"):
        await run_browser(ctx, BrowserConfig(executable_path="/nonexistent/chromium"))
    assert ctx.staged == {}


async def test_host_allowlist_blocks_goto_up_front_and_links_in_the_page(
    chromium: str, site: str
) -> None:
    config = BrowserConfig(allowed_hosts=("127.0.0.1",))
    with pytest.raises(HandlerError, match=r"actions\[0\] .*host 'evil.test' is not in"):
        await run_browser(
            make_ctx({"actions": [{"action": "goto", "url": "http://evil.test/"}]}), config
        )

    # The login page links to the same server under the name "localhost": clicking it is blocked.
    ctx = make_ctx(
        {
            "actions": [
                {"action": "goto", "url": f"{site}/login"},
                {"action": "click", "selector": "#elsewhere", "timeout_ms": 2000},
                {"action": "evaluate", "expression": "location.hostname"},
            ],
            "trace": "off",
        }
    )
    result = await run_browser(ctx, config)
    assert result["blocked_requests"][0]["url"].startswith("http://localhost:")
    assert "not in this worker's allowed hosts" in result["blocked_requests"][0]["reason"]
    assert result["evaluations"] != ["localhost"]  # the page never reached the other host


def test_handlers_factory_refuses_missing_chromium_and_bad_config() -> None:
    with pytest.raises(ConfigError, match="Debian package 'chromium'"):
        browser.handlers({"executable_path": "/nonexistent/chromium"})
    with pytest.raises(ConfigError, match="invalid browser config"):
        browser.handlers({"headfull": True}, check_tools=False)
    table = browser.handlers({"executable_path": "/nonexistent/chromium"}, check_tools=False)
    assert set(table) == {"browser"}


def test_config_from_environment_with_lists_and_overrides() -> None:
    env = {
        "WORLDPOOL_BROWSER_HEADFUL": "true",
        "WORLDPOOL_BROWSER_VNC_LISTEN": "0.0.0.0",
        "WORLDPOOL_BROWSER_ALLOWED_HOSTS": "*.example.com, 127.0.0.1",
    }
    cfg = BrowserConfig.from_env(env, overrides={"vnc_public_host": "browser-1.example.net"})
    assert cfg.headful and cfg.vnc_listen == "0.0.0.0"
    assert cfg.allowed_hosts == ("*.example.com", "127.0.0.1")
    assert cfg.vnc_public_host == "browser-1.example.net"
    with pytest.raises(ConfigError, match="action_timeout_ms"):
        BrowserConfig.from_env({"WORLDPOOL_BROWSER_ACTION_TIMEOUT_MS": "soon"})


class _NavigatingPage:
    """A page whose first evaluate() loses its context to a navigation (a test double)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.settled = 0

    async def evaluate(self, expression: str) -> str:
        from playwright.async_api import Error

        if self.failures:
            self.failures -= 1
            raise Error(
                "Page.evaluate: Execution context was destroyed, most likely because "
                "of a navigation"
            )
        return f"value of {expression}"

    async def wait_for_load_state(self, state: str, timeout: int) -> None:  # noqa: ASYNC109
        self.settled += 1


async def test_evaluate_runs_again_once_a_navigation_has_settled() -> None:
    page = _NavigatingPage(failures=1)
    assert (
        await browser_session.evaluate(page, "location.hostname", 1000)
        == "value of location.hostname"
    )
    assert page.settled == 1

    endless = _NavigatingPage(failures=100)  # a page that never stops navigating: bounded
    with pytest.raises(Exception, match="Execution context was destroyed"):
        await browser_session.evaluate(endless, "1", 1000)
    assert endless.settled == browser_session.NAVIGATION_RETRIES
