"""One browser step's page: :class:`BrowserSession` runs the parsed actions
(:mod:`.browser_actions`) on it with Playwright, one timeout per action within the step's
deadline, and keeps what it saw: the console log, ``evaluate`` results, screenshots
(stored as artifacts) and the requests the URL policy blocked. A Playwright error becomes
a :class:`HandlerError` naming the failing action, retryable for timeouts, network errors
and crashes.

Launching Chromium, the HAR, traces and the step's result are the handler's
(:mod:`.browser`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from worldpool.errors import HandlerError
from worldpool.executors.browser_actions import (
    Action,
    Click,
    Evaluate,
    Fill,
    Goto,
    Press,
    Screenshot,
    UrlPolicy,
    WaitFor,
)
from worldpool.worker.handlers import TaskContext

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page, Request, Route

MAX_CONSOLE_LINES = 500
MAX_EVALUATION_BYTES = 64 * 1024
NAVIGATION_RETRIES = 3  # evaluate() runs again at most this often after a navigation


def _json_safe(value: Any) -> Any:
    """An evaluate() result as plain JSON, cut to MAX_EVALUATION_BYTES."""
    text = json.dumps(value, default=str)
    if len(text) > MAX_EVALUATION_BYTES:
        return {"truncated": True, "prefix": text[:MAX_EVALUATION_BYTES]}
    return json.loads(text)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


def _retryable(message: str, timed_out: bool) -> bool:
    """Timeouts, network errors and crashes may pass; bad selectors and JS errors will not."""
    if "ERR_BLOCKED_BY_CLIENT" in message:
        return False
    lowered = message.lower()
    return timed_out or "net::" in message or "crash" in lowered or "closed" in lowered


class BrowserSession:
    """One step's browser: runs the actions on one page and keeps what it saw."""

    def __init__(
        self, ctx: TaskContext, context: BrowserContext, policy: UrlPolicy, default_timeout_ms: int
    ) -> None:
        self.ctx = ctx
        self.context = context
        self.policy = policy
        self.default_timeout_ms = default_timeout_ms
        self._page: Page | None = None
        self.console: list[dict[str, str]] = []
        self.console_dropped = 0
        self.blocked: list[dict[str, str]] = []
        self.evaluations: list[Any] = []
        self.screenshots: list[str] = []

    @property
    def is_open(self) -> bool:
        return self._page is not None

    @property
    def page(self) -> Page:
        if self._page is None:
            raise HandlerError("the browser page is not open", retryable=True)
        return self._page

    async def open(self) -> None:
        # A persistent context starts with one blank page: use it rather than open a second.
        self._page = self.context.pages[0] if self.context.pages else await self.context.new_page()
        self.page.on("console", lambda msg: self._console(msg.type, msg.text))
        self.page.on("pageerror", lambda err: self._console("pageerror", str(err)))
        if self.policy.restricts_hosts:
            await self.context.route("**/*", self._route)

    def _console(self, kind: str, text: str) -> None:
        if len(self.console) < MAX_CONSOLE_LINES:
            self.console.append({"type": kind, "text": text[:2000]})
        else:
            self.console_dropped += 1

    async def _route(self, route: Route, request: Request) -> None:
        reason = self.policy.why_blocked(request.url)
        if reason is None:
            await route.continue_()
            return
        self.blocked.append({"url": request.url[:2000], "reason": reason})
        await route.abort("blockedbyclient")

    def _timeout(self, action: Action, index: int) -> int:
        wanted = action.timeout_ms or self.default_timeout_ms
        left = self.ctx.time_left_s
        if left is None:
            return wanted
        if left <= 0:
            raise HandlerError(
                f"actions[{index}] ({action.describe()}): the step's deadline "
                "passed before it could start",
                retryable=True,
            )
        return max(1, min(wanted, int(left * 1000)))

    async def run(self, actions: list[Action]) -> None:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        for index, action in enumerate(actions):
            self.ctx.check_cancelled()
            timeout = self._timeout(action, index)
            try:
                await self._do(action, timeout)
            except PlaywrightError as exc:
                timed_out = isinstance(exc, PlaywrightTimeout)
                reason = first_line(exc)
                raise HandlerError(
                    f"actions[{index}] ({action.describe()}): {reason}",
                    retryable=_retryable(reason, timed_out),
                ) from exc
            self.ctx.report_progress((index + 1) / len(actions), action.describe())

    async def _do(self, action: Action, timeout_ms: int) -> None:
        page = self.page
        if isinstance(action, Goto):
            await page.goto(action.url, wait_until=action.wait_until, timeout=timeout_ms)
        elif isinstance(action, Fill):
            await page.fill(action.selector, action.value, timeout=timeout_ms)
        elif isinstance(action, Click):
            await page.click(action.selector, timeout=timeout_ms)
        elif isinstance(action, Press):
            if action.selector is None:
                await page.keyboard.press(action.key)
            else:
                await page.press(action.selector, action.key, timeout=timeout_ms)
        elif isinstance(action, WaitFor):
            if action.selector is not None:
                await page.wait_for_selector(
                    action.selector, state=action.state, timeout=timeout_ms
                )
            else:
                await page.get_by_text(str(action.text)).first.wait_for(
                    state=action.state, timeout=timeout_ms
                )
        elif isinstance(action, Evaluate):
            value = await evaluate(page, action.expression, timeout_ms)
            self.evaluations.append(_json_safe(value))
        elif isinstance(action, Screenshot):
            png = await page.screenshot(full_page=action.full_page, timeout=timeout_ms)
            self.ctx.store(action.artifact_name, png, "image/png")
            self.screenshots.append(action.artifact_name)
            self.ctx.set_meta("screenshot", action.artifact_name)


async def evaluate(page: Any, expression: str, timeout_ms: int) -> Any:
    """``page.evaluate``, run again once the page has settled when a navigation (a link the
    last click followed, a redirect, a blocked request's error page) destroyed the context
    it was running in."""
    from playwright.async_api import Error as PlaywrightError  # the optional extra

    for _ in range(NAVIGATION_RETRIES):
        try:
            return await page.evaluate(expression)
        except PlaywrightError as exc:
            if "Execution context was destroyed" not in str(exc):
                raise
            await page.wait_for_load_state("domcontentloaded", timeout=timeout_ms)
    return await page.evaluate(expression)
