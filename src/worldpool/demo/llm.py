"""The demo's model steps' side: which model they call, the call itself, what it said.

The GPU workers' steps (:mod:`.handlers`) ask through :func:`ask`: the endpoint the
scenario chose (:func:`llm_mode`: ``WORLDPOOL_DEMO_LLM_URL``, else the local model of the
``local-llm`` extra, which :func:`llm_for_run` starts on a free loopback port, else the
labelled offline rule). Every call is priced per token and its answer, tokens and speed go
into the step's result (:func:`with_call`); :func:`print_model_answers` shows them after
the run. :func:`read_screenshot` reads the browser step's screenshot with the ``vision``
executor for the review step.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from worldpool.errors import ConfigError, HandlerError
from worldpool.worker.handlers import TaskContext

if TYPE_CHECKING:  # the handlers' module is loaded by workers: keep the pool and rich out
    from rich.console import Console

    from worldpool.embedded import EmbeddedPool

SCREENSHOT = "verify_browser/login.png"  # the browser step's screenshot, as review's input
OFFLINE = (
    "offline rule (no LLM endpoint: install the local model with "
    "pip install 'worldpool[local-llm]', or set WORLDPOOL_DEMO_LLM_URL)"
)

#: What the demo prices its model's tokens at (USD per million in / out): a small hosted
#: model's list price, so the cost column shows per-token pricing at work.
DEMO_PRICE_IN_PER_MTOK = 0.10
DEMO_PRICE_OUT_PER_MTOK = 0.40
DEFAULT_DEMO_MODEL = "qwen3-235b"
LLM_CALL_FIELDS = ("model", "tokens_in", "tokens_out", "tokens_per_s", "cost_usd", "latency_ms")
LLMCall = dict[str, Any]  # one model call as a step's result shows it ({} when none)
_endpoint: dict[str, str] = {}  # set by the scenario when it starts the local model


def use_llm(url: str | None, model: str | None = None, *, offline: bool = False) -> None:
    """Point the LLM steps at ``url``; ``offline``: the rule even if an endpoint is set;
    neither: back to ``WORLDPOOL_DEMO_LLM_URL`` (or the rule without it)."""
    _endpoint.clear()
    if offline:
        _endpoint["offline"] = "yes"
    elif url:
        _endpoint.update(url=url, model=model or DEFAULT_DEMO_MODEL)


def llm_endpoint() -> tuple[str, str] | None:
    """(base URL, model) the LLM steps call, or None: they use the offline rule."""
    if "offline" in _endpoint:
        return None
    if _endpoint:
        return _endpoint["url"], _endpoint["model"]
    url = os.environ.get("WORLDPOOL_DEMO_LLM_URL")
    if not url:
        return None
    return url, os.environ.get("WORLDPOOL_DEMO_LLM_MODEL", DEFAULT_DEMO_MODEL)


def ask(ctx: TaskContext, prompt: str, max_tokens: int = 96) -> tuple[str, str, LLMCall]:
    """The model's answer, a label, and what the call counted (``{}`` without a model).

    Without an endpoint: ("", OFFLINE, {}), and the step falls back on its offline rule."""
    endpoint = llm_endpoint()
    if endpoint is None:
        return "", OFFLINE, {}
    url, model = endpoint
    from worldpool.executors.llm import LLMConfig, chat

    config = LLMConfig(
        base_url=url,
        model=model,
        timeout_s=90.0,
        price_in_per_mtok=DEMO_PRICE_IN_PER_MTOK,
        price_out_per_mtok=DEMO_PRICE_OUT_PER_MTOK,
    )
    payload = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.2}
    saved, ctx.payload = ctx.payload, payload
    try:  # sync handlers run in a worker thread: give the call its own event loop
        answer = asyncio.run(chat(ctx, config))
    finally:
        ctx.payload = saved
    content = str(answer.get("content") or "")
    call: LLMCall = {key: answer.get(key) for key in LLM_CALL_FIELDS}
    call["answer"] = content[:500]
    return content, f"LLM {answer.get('model') or model} at {url}", call


def with_call(result: dict[str, Any], call: LLMCall) -> dict[str, Any]:
    """A step's result, with what its model call answered, counted and cost (if any)."""
    if call:
        result["llm"] = call
    return result


def read_screenshot(ctx: TaskContext) -> dict[str, str]:
    """What the browser step's screenshot shows, read by the vision executor: the endpoint
    at ``WORLDPOOL_DEMO_VISION_URL`` (model ``WORLDPOOL_DEMO_VISION_MODEL``) when set, else
    local OCR (Tesseract). ``quote`` is its text on one line, cut at 200 characters."""
    name = SCREENSHOT
    if name not in ctx.input_data:
        return {"engine": "nothing", "quote": "no screenshot (the browser check did not run)"}
    from worldpool.executors.vision import VisionConfig, read_image

    url = os.environ.get("WORLDPOOL_DEMO_VISION_URL")
    model = os.environ.get("WORLDPOOL_DEMO_VISION_MODEL")
    config = VisionConfig(base_url=url, model=model) if url and model else VisionConfig()
    saved, ctx.payload = ctx.payload, {"artifact": name, "prompt": "What does this page say?"}
    try:
        result = asyncio.run(read_image(ctx, config))
    except HandlerError as exc:  # no Tesseract here: say so, the review still stands
        ctx.log.warning("the screenshot was not read: %s", exc)
        return {"engine": "nothing", "quote": f"not read: {exc}"}
    finally:
        ctx.payload = saved
    quote = " ".join(str(result["text"]).split())
    return {"engine": str(result["engine"]), "quote": quote[:200]}


LLMMode = str  # "auto": the URL, else the local model, else offline; "local"; "offline"


def llm_mode(mode: LLMMode = "auto") -> tuple[str, str]:
    """(what the LLM steps will use: "url" | "local" | "offline", a line saying so)."""
    from worldpool.executors import llm_local

    url = os.environ.get("WORLDPOOL_DEMO_LLM_URL")
    if mode == "auto" and url:
        return "url", f"LLM steps: the endpoint at {url} (WORLDPOOL_DEMO_LLM_URL)"
    gaps = llm_local.missing()
    if mode != "offline" and not gaps:
        return "local", "LLM steps: a real local model, SmolLM2-135M-Instruct on llama.cpp"
    if mode == "local":
        raise ConfigError(f"the local model is not installed: {llm_local.INSTALL_HINT}")
    why = "offline chosen" if mode == "offline" else "missing " + ", ".join(gaps)
    return "offline", (
        f"LLM steps: the labelled offline rule ({why}); for a real local model: "
        f"{llm_local.INSTALL_HINT}, or set WORLDPOOL_DEMO_LLM_URL"
    )


@contextlib.contextmanager
def llm_for_run(mode: LLMMode) -> Iterator[None]:
    """Point the handlers at the chosen endpoint for the run (starting the local model)."""
    kind, _ = llm_mode(mode)
    if kind != "local":
        use_llm(None, offline=kind == "offline")
        try:
            yield
        finally:
            use_llm(None)
        return
    from worldpool.executors.llm_local import MODEL_ALIAS, LocalLLMServer

    with LocalLLMServer() as server:
        use_llm(server.base_url, MODEL_ALIAS)
        try:
            yield
        finally:
            use_llm(None)


async def print_model_answers(console: Console, pool: EmbeddedPool) -> None:
    """What the GPU steps' model said, with its tokens, speed and per-token cost."""
    records = [r for r in await pool.backend.list_tasks() if isinstance(r.result, dict)]
    results = {str(r.spec.step): r.result for r in records}
    calls = [(str(r.spec.step), r.result["llm"]) for r in records if r.result.get("llm")]
    if not calls:
        return
    console.print("\n[bold]What the model said[/] (GPU steps; answers cut at 500 characters)")
    for step, call in calls:
        console.print(
            f"[bold]{step}[/]: {call.get('model')}, {call.get('tokens_in')} tokens in, "
            f"{call.get('tokens_out')} out, {call.get('tokens_per_s')} tokens/s, "
            f"${call.get('cost_usd') or 0:.8f}"
        )
        answer = " ".join(str(call.get("answer") or "").split())
        console.print(f"  {answer[:300] or '(empty answer)'}", markup=False, highlight=False)
        result = results[step]
        if "patch_source" in result:
            whose = "the model's" if result["patch_source"] == "model" else "the offline rule's"
            console.print(f"  patch used: {whose} ({result['patch_note']})", markup=False)
        if "screenshot_read" in result:
            seen = result["screenshot_read"]
            console.print(f"  screenshot read by {seen['engine']}: {seen['quote']!r}", markup=False)
