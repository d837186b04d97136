"""Shared pieces for the API tests: handlers, an embedded pool, a loopback server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from tests.helpers import free_port
from worldpool.api import ApiTokens, create_app
from worldpool.config import Settings
from worldpool.models import GPU, Hardware, StepSpec, TaskSpec, WorkflowSpec
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext

ADMIN = "admin-token-0123456789"
READ = "read-token-0123456789ab"
TOKENS = ApiTokens(admin=ADMIN, read=READ)
SETTINGS = Settings(heartbeat_s=0.1, api_max_body_bytes=64 * 1024)
# 1x1 transparent PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def echo(ctx: TaskContext) -> Any:
    return ctx.payload


async def nap(ctx: TaskContext) -> Any:
    await asyncio.sleep(float(ctx.payload.get("s", 0.2)))
    ctx.add_usage(tokens=int(ctx.payload.get("tokens", 0)), cost_usd=0.001)
    ctx.log.info("napped")
    return {"slept": ctx.payload.get("s", 0.2)}


def shot(ctx: TaskContext) -> Any:
    ctx.store("page.png", PNG, "image/png")
    ctx.set_meta("vnc_url", "http://127.0.0.1:6080/vnc.html")
    return "ok"


def boom(ctx: TaskContext) -> Any:
    raise ValueError("boom on purpose")


def flaky(ctx: TaskContext) -> Any:
    """Fails until its attempt number reaches ``ok_from_attempt``: a retry by hand fixes it."""
    if ctx.attempt < int(ctx.payload.get("ok_from_attempt", 2)):
        raise ValueError(f"flaky: attempt {ctx.attempt} fails")
    return {"attempt": ctx.attempt}


HANDLERS: dict[str, Callable[[TaskContext], Any]] = {
    "echo": echo,
    "nap": nap,
    "shot": shot,
    "boom": boom,
    "flaky": flaky,
}


def make_pool() -> EmbeddedPool:
    workers = [
        make_worker(
            "tokyo-gpu-1",
            region="ap-northeast-1",
            handlers=HANDLERS,
            hardware=Hardware(gpus=[GPU(model="H100", vram_gb=80)]),
            cost_per_hour=4.0,
        ),
        make_worker("virginia-cpu-1", region="us-east-1", handlers=HANDLERS),
        make_worker("frankfurt-browser-1", region="eu-central-1", handlers=HANDLERS),
    ]
    return EmbeddedPool(HANDLERS, workers, SETTINGS)


def demo_workflow(wf_id: str | None = None, nap_s: float = 0.3) -> WorkflowSpec:
    """A demo-like DAG: plan -> (browse, infer) -> report."""

    def step(name: str, handler: str, after: list[str], **payload: Any) -> StepSpec:
        return StepSpec(name=name, after=after, task=TaskSpec(handler=handler, payload=payload))

    spec = WorkflowSpec(
        name="demo",
        steps=[
            step("plan", "nap", [], s=nap_s, tokens=120),
            step("browse", "shot", ["plan"]),
            step("infer", "nap", ["plan"], s=nap_s, tokens=900),
            step("report", "nap", ["browse", "infer"], s=nap_s / 2),
        ],
    )
    if wf_id:
        spec = spec.model_copy(update={"id": wf_id})
    return spec


def build_app(pool: EmbeddedPool, **kwargs: Any) -> FastAPI:
    kwargs.setdefault("tokens", TOKENS)
    return create_app(pool.orchestrator, SETTINGS, **kwargs)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on loopback in this event loop; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class ThreadedServer:
    """An embedded pool plus the API, served by uvicorn in a thread of its own (for sync
    clients: schemathesis, Playwright)."""

    def __init__(self, **app_kwargs: Any) -> None:
        self.app_kwargs = app_kwargs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.error: BaseException | None = None

    async def _main(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with make_pool() as pool:
                self.pool = pool
                app = build_app(pool, **self.app_kwargs)
                server = uvicorn.Server(
                    uvicorn.Config(
                        app,
                        host="127.0.0.1",
                        port=self.port,
                        log_level="warning",
                        timeout_graceful_shutdown=1,
                    )
                )
                task = asyncio.create_task(server.serve())
                for _ in range(3000):
                    if server.started or task.done():
                        break
                    await asyncio.sleep(0.01)
                self._ready.set()
                await self._stop.wait()
                server.should_exit = True
                await task
        except BaseException as exc:  # surfaced by start()
            self.error = exc
            self._ready.set()

    def start(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(30) or self.error:
            raise RuntimeError(f"server did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def threaded_server(**app_kwargs: Any) -> Iterator[ThreadedServer]:
    with ThreadedServer(**app_kwargs) as server:
        yield server
