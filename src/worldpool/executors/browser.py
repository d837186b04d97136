"""The ``browser`` handler: Playwright driving the system Chromium through a list of actions.

Chromium is Debian's (``/usr/bin/chromium``); worldpool never downloads a browser (do not
run ``playwright install``). Each step gets a fresh profile in a temporary directory, runs
its actions (parsed by :mod:`.browser_actions`, run on one page by :mod:`.browser_session`)
and returns the final URL and title, the console log and any ``evaluate`` results.
This module holds the worker's :class:`BrowserConfig`, the step's payload, the launch and
the artifacts, and ``handlers()``. Artifacts: one PNG per ``screenshot``
action, ``network.har`` (the network log), and on failure ``failure-screenshot.png`` and a
Playwright ``trace.zip`` (open it with ``playwright show-trace trace.zip``).

With ``headful=True`` the browser runs visibly on an Xvfb display that x11vnc serves; the
step publishes ``vnc_url`` as soon as the display is up (a PROGRESS report, so the status
document carries it while the step runs) and clears it before the display stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worldpool.errors import ConfigError, HandlerError
from worldpool.executors.browser_actions import Action, UrlPolicy, parse_actions
from worldpool.executors.browser_session import BrowserSession, first_line
from worldpool.executors.vnc import VirtualDisplay
from worldpool.worker.handlers import Handler, TaskContext

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

DEFAULT_CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = (
    "--no-sandbox",  # the worker's own sandbox (VM, container) is the isolation boundary
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
FAILURE_SCREENSHOT = "failure-screenshot.png"
ENV_PREFIX = "WORLDPOOL_BROWSER_"
_LIST_FIELDS = {"extra_args", "allowed_schemes", "allowed_hosts"}


class BrowserConfig(BaseModel):
    """Per-worker browser settings (the handler factory's argument)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    executable_path: str = DEFAULT_CHROMIUM
    extra_args: tuple[str, ...] = ()
    allowed_schemes: frozenset[str] = frozenset({"http", "https"})
    allowed_hosts: tuple[str, ...] | None = Field(
        default=None, description="None: any host; else names or globs like '*.example.com'"
    )
    headful: bool = Field(default=False, description="run on Xvfb and serve it over VNC")
    vnc_listen: str = "127.0.0.1"
    vnc_public_host: str | None = None
    vnc_password_file: Path | None = None
    vnc_view_only: bool = True
    viewport_width: int = Field(default=1280, ge=200, le=7680)
    viewport_height: int = Field(default=800, ge=200, le=4320)
    action_timeout_ms: int = Field(default=10_000, gt=0)
    navigation_timeout_ms: int = Field(default=30_000, gt=0)
    har_content: Literal["omit", "embed"] = "omit"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> BrowserConfig:
        """``WORLDPOOL_BROWSER_<FIELD>`` variables (lists comma-separated); overrides win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = (
                    [p.strip() for p in raw.split(",") if p.strip()]
                    if name in _LIST_FIELDS
                    else raw
                )
        values.update(overrides or {})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid browser config: {reasons}") from None

    @property
    def url_policy(self) -> UrlPolicy:
        return UrlPolicy(schemes=self.allowed_schemes, hosts=self.allowed_hosts)

    def missing_tools(self) -> list[str]:
        """What this config needs but the machine lacks, each with the package to install."""
        missing = []
        if not (os.access(self.executable_path, os.X_OK) or shutil.which(self.executable_path)):
            missing.append(f"{self.executable_path} (Debian package 'chromium')")
        if self.headful:
            missing += [
                f"{b} (Debian package '{p}')"
                for b, p in (("Xvfb", "xvfb"), ("x11vnc", "x11vnc"))
                if shutil.which(b) is None
            ]
        return missing


class BrowserPayload(BaseModel):
    """A browser step's payload."""

    model_config = ConfigDict(extra="forbid")

    actions: list[Any]
    viewport: dict[Literal["width", "height"], int] | None = None
    action_timeout_ms: int | None = Field(default=None, gt=0)
    trace: Literal["on_failure", "always", "off"] = "on_failure"


def _parse_payload(payload: Mapping[str, Any]) -> tuple[BrowserPayload, list[Action]]:
    try:
        parsed = BrowserPayload.model_validate(payload)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise HandlerError(f"bad browser payload: {reasons}", retryable=False) from None
    return parsed, parse_actions(parsed.actions)


async def run_browser(ctx: TaskContext, config: BrowserConfig) -> dict[str, Any]:
    """Run one browser step; raise HandlerError naming the failing action's index."""
    payload, actions = _parse_payload(ctx.payload)
    config.url_policy.check_actions(actions)
    missing = config.missing_tools()
    if missing:
        raise HandlerError(
            "this worker cannot run browser steps: missing " + ", ".join(missing), retryable=True
        )
    try:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - depends on the install
        raise HandlerError(
            "the browser handler needs Playwright: pip install 'worldpool[browser]'"
            " (never run 'playwright install'; it uses /usr/bin/chromium)",
            retryable=True,
        ) from None

    started = time.monotonic()
    viewport = {
        "width": config.viewport_width,
        "height": config.viewport_height,
        **(payload.viewport or {}),
    }
    with tempfile.TemporaryDirectory(prefix="worldpool-browser-") as tmp:
        har = Path(tmp) / "network.har"
        async with contextlib.AsyncExitStack() as stack:
            env: dict[str, str | float | bool] | None = None
            if config.headful:
                display = VirtualDisplay(
                    width=int(viewport["width"]),
                    height=int(viewport["height"]) + 120,
                    listen=config.vnc_listen,
                    public_host=config.vnc_public_host,
                    password_file=config.vnc_password_file,
                    view_only=config.vnc_view_only,
                )
                await stack.enter_async_context(display)
                # Published now, while the session runs (the status document and the
                # dashboard's viewer show it), and cleared before the display stops.
                ctx.publish_meta(vnc_url=display.vnc_url)
                stack.callback(ctx.publish_meta, vnc_url=None)
                env = {**os.environ, "DISPLAY": str(display.display)}
            playwright = await stack.enter_async_context(async_playwright())
            try:
                context = await playwright.chromium.launch_persistent_context(
                    str(Path(tmp) / "profile"),
                    executable_path=config.executable_path,
                    headless=not config.headful,
                    args=[*LAUNCH_ARGS, *config.extra_args],
                    env=env,
                    viewport=viewport,  # type: ignore[arg-type]
                    record_har_path=har,
                    record_har_content=config.har_content,
                )
            except PlaywrightError as exc:
                raise HandlerError(
                    f"Chromium at {config.executable_path} failed to start: {first_line(exc)}",
                    retryable=True,
                ) from exc
            context.set_default_navigation_timeout(config.navigation_timeout_ms)
            live: asyncio.Task[None] | None = None
            session = BrowserSession(
                ctx,
                context,
                config.url_policy,
                payload.action_timeout_ms or config.action_timeout_ms,
            )
            try:
                if payload.trace != "off":
                    await context.tracing.start(screenshots=True, snapshots=True)
                await session.open()
                if config.headful:  # watched: keep a last screenshot fresh meanwhile
                    live = asyncio.create_task(_live_screenshots(ctx, session))
                await session.run(actions)
                result = {"final_url": session.page.url, "title": await session.page.title()}
                # A watched (headful) session is a debugging one: its trace is kept too.
                if payload.trace == "always" or (config.headful and payload.trace != "off"):
                    await _store_trace(ctx, context, Path(tmp))
            except Exception as exc:
                await _store_failure(ctx, session, Path(tmp), payload.trace != "off")
                if isinstance(exc, PlaywrightError):  # outside any action: setup or teardown
                    raise HandlerError(
                        f"browser failed: {first_line(exc)}", retryable=True
                    ) from exc
                raise
            finally:
                if live is not None:
                    await _stop(live)
                with contextlib.suppress(PlaywrightError):
                    await context.close()  # writes the HAR
                if har.exists():
                    ctx.store("network.har", har.read_bytes(), "application/json")
                if session.console_dropped:
                    ctx.log.info("console log truncated: %d more lines", session.console_dropped)
    return {
        **result,
        "console": session.console,
        "console_truncated": session.console_dropped > 0,
        "evaluations": session.evaluations,
        "screenshots": session.screenshots,
        "blocked_requests": session.blocked,
        "har": "network.har",
        "actions_run": len(actions),
        "duration_ms": int((time.monotonic() - started) * 1000),
    }


LAST_SCREENSHOT = "last-screenshot.png"
LIVE_SCREENSHOT_EVERY_S = 2.0


async def _live_screenshots(ctx: TaskContext, session: BrowserSession) -> None:
    """Publish what the page shows every couple of seconds while a watched step runs."""
    from playwright.async_api import Error as PlaywrightError

    await asyncio.sleep(0.5)
    while True:
        with contextlib.suppress(PlaywrightError):
            png = await session.page.screenshot(timeout=5_000)
            ctx.publish_artifact(LAST_SCREENSHOT, png, "image/png")
        await asyncio.sleep(LIVE_SCREENSHOT_EVERY_S)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _store_trace(ctx: TaskContext, context: BrowserContext, tmp: Path) -> None:
    path = tmp / "trace.zip"
    await context.tracing.stop(path=path)
    if path.exists():
        ctx.store("trace.zip", path.read_bytes(), "application/zip")


async def _store_failure(ctx: TaskContext, session: BrowserSession, tmp: Path, trace: bool) -> None:
    """Best effort: what the page looked like, the trace, and the console tail in the log."""
    from playwright.async_api import Error as PlaywrightError

    with contextlib.suppress(PlaywrightError):
        if session.is_open and FAILURE_SCREENSHOT not in session.screenshots:
            png = await session.page.screenshot(timeout=5_000)
            ctx.store(FAILURE_SCREENSHOT, png, "image/png")
            ctx.set_meta("screenshot", FAILURE_SCREENSHOT)
    if trace:
        with contextlib.suppress(PlaywrightError):
            await _store_trace(ctx, session.context, tmp)
    for line in session.console[-20:]:
        ctx.log.info("console %s: %s", line["type"], line["text"])


def handlers(
    config: BrowserConfig | Mapping[str, Any] | None = None, *, check_tools: bool = True
) -> dict[str, Handler]:
    """``{"browser": handler}`` for a worker; refuses to start when Chromium is missing.

    A mapping (or None) is laid over the ``WORLDPOOL_BROWSER_*`` environment variables, so
    ``worldpool worker --handlers worldpool.executors.browser:handlers`` works as is."""
    cfg = config if isinstance(config, BrowserConfig) else BrowserConfig.from_env(overrides=config)
    if importlib.util.find_spec("playwright") is None:
        raise ConfigError(
            "the browser handler needs Playwright: pip install 'worldpool[browser]' "
            "(never 'playwright install': it drives the system Chromium)"
        )
    if check_tools and (missing := cfg.missing_tools()):
        raise ConfigError(
            "browser worker needs "
            + ", ".join(missing)
            + "; install them with apt-get or drop the browser handler"
        )

    async def browser(ctx: TaskContext) -> dict[str, Any]:
        return await run_browser(ctx, cfg)

    return {"browser": browser}
