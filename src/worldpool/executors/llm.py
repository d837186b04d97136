"""The ``llm`` handler: chat completions against any OpenAI-compatible server.

A worker is configured with one :class:`~.llm_client.LLMConfig` (base URL, default model,
the *name* of the environment variable holding the API key, prices); the requests
themselves are :class:`~.llm_client.ChatClient`'s. A step's payload::

    {"messages": [{"role": "user", "content": "Hi"}],   # or "prompt": "Hi" (+ "system")
     "model": "override-model", "max_tokens": 256, "temperature": 0.2, "stream": true}

Rate limits (429) and server errors (5xx) are retried here with exponential backoff and
jitter, honouring ``Retry-After``; a server that is down or answers garbage fails the step
with a retryable error, so the orchestrator can try another worker. Tokens come from the
response's ``usage`` (for streams: the last chunk, asked for with
``stream_options.include_usage``); token cost from the per-token prices (the worker's
``cost_per_hour`` times the time spent is charged to every attempt by the orchestrator,
so an unpriced call reports no token cost rather than the worker time twice).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worldpool.errors import HandlerError
from worldpool.executors.llm_client import (
    ChatClient,
    Completion,
    LLMConfig,
    RetryLater,
    parse_completion,
    parse_retry_after,
)
from worldpool.worker.handlers import Handler, TaskContext

__all__ = [
    "ChatPayload",
    "Completion",
    "LLMConfig",
    "RetryLater",
    "backoff_delay",
    "chat",
    "cost_of",
    "handlers",
    "parse_completion",
    "parse_retry_after",
]

NO_STREAM_USAGE = (
    "the server sent no usage in its stream (it ignored "
    "stream_options.include_usage); tokens were not counted"
)
_sleep = asyncio.sleep  # the one seam tests replace to observe backoff without waiting


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_call_id, ... pass through

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatPayload(BaseModel):
    """An ``llm`` step's payload: ``messages`` or ``prompt`` (with an optional ``system``)."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] | None = Field(default=None, min_length=1)
    prompt: str | None = None
    system: str | None = None
    model: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    stream: bool = False

    def request_body(self, config: LLMConfig) -> dict[str, Any]:
        if (self.messages is None) == (self.prompt is None):
            raise HandlerError(
                "llm payload needs exactly one of 'messages' or 'prompt'", retryable=False
            )
        if self.messages is not None:
            messages = [m.model_dump(exclude_none=True) for m in self.messages]
        else:
            messages = [{"role": "user", "content": self.prompt}]
            if self.system:
                messages.insert(0, {"role": "system", "content": self.system})
        body: dict[str, Any] = {
            "model": self.model or config.model,
            "messages": messages,
            "stream": self.stream,
        }
        for key in ("max_tokens", "temperature", "stop"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        if self.stream and config.stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body


def backoff_delay(
    attempt: int, config: LLMConfig, retry_after_s: float | None, rand: float | None = None
) -> float:
    """Seconds to wait before retry ``attempt + 1``: the server's ``Retry-After`` when given
    (capped at ``retry_after_max_s``), else exponential backoff with "equal jitter" (half
    fixed, half random), so many workers hit by one rate limit do not retry in lockstep."""
    if retry_after_s is not None:
        return min(retry_after_s, config.retry_after_max_s)
    base = min(config.backoff_max_s, config.backoff_initial_s * 2.0**attempt)
    return base / 2 + (random.random() if rand is None else rand) * base / 2


def cost_of(
    usage: dict[str, int] | None, config: LLMConfig, cost_per_hour: float, elapsed_s: float
) -> tuple[float, str]:
    """(token USD, basis): per-token prices when set and usage is known; else nothing here
    (basis ``worker_time``): the orchestrator charges the worker's time to the attempt."""
    priced = config.price_in_per_mtok is not None or config.price_out_per_mtok is not None
    if usage is not None and priced:
        cost = (
            usage.get("prompt_tokens", 0) * (config.price_in_per_mtok or 0.0)
            + usage.get("completion_tokens", 0) * (config.price_out_per_mtok or 0.0)
        ) / 1e6
        return cost, "per_token"
    return 0.0, "worker_time"


async def chat(
    ctx: TaskContext, config: LLMConfig, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """Run one ``llm`` step; returns the answer, usage and cost (also added to ``ctx``)."""
    try:
        payload = ChatPayload.model_validate(ctx.payload)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise HandlerError(f"bad llm payload: {reasons}", retryable=False) from None
    body = payload.request_body(config)
    timeout_s = config.timeout_s
    if ctx.time_left_s is not None:
        timeout_s = max(0.1, min(timeout_s, ctx.time_left_s))
    timeout = httpx.Timeout(timeout_s, connect=min(config.connect_timeout_s, timeout_s))
    started = time.monotonic()
    attempts = 0
    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
        caller = ChatClient(ctx, config, client)
        while True:
            ctx.check_cancelled()
            attempts += 1
            outcome = await caller.attempt(body, timeout_s)
            if isinstance(outcome, Completion):
                break
            if attempts > config.max_retries:
                raise HandlerError(
                    f"{caller.where} answered {outcome.status} on all {attempts} "
                    f"attempts: {outcome.detail}",
                    retryable=True,
                )
            delay = backoff_delay(attempts - 1, config, outcome.retry_after_s)
            left = ctx.time_left_s
            if left is not None and delay >= left:
                raise HandlerError(
                    f"{caller.where} answered {outcome.status} and the step's "
                    f"deadline is too close to wait {delay:.1f}s",
                    retryable=True,
                )
            ctx.log.warning(
                "%s answered %d (%s); retry %d/%d in %.2fs",
                caller.where,
                outcome.status,
                outcome.detail,
                attempts,
                config.max_retries,
                delay,
            )
            await _sleep(delay)
    return _record(ctx, config, outcome, body, attempts, time.monotonic() - started)


def _record(
    ctx: TaskContext,
    config: LLMConfig,
    completion: Completion,
    body: dict[str, Any],
    attempts: int,
    elapsed_s: float,
) -> dict[str, Any]:
    usage = completion.usage
    if usage is None:
        ctx.log.warning(
            NO_STREAM_USAGE
            if body["stream"]
            else "the server sent no usage; tokens were not counted"
        )
    cost, basis = cost_of(usage, config, ctx.worker.cost_per_hour, elapsed_s)
    tokens_in = usage.get("prompt_tokens", 0) if usage else 0
    tokens_out = usage.get("completion_tokens", 0) if usage else 0
    ctx.add_usage(tokens_in + tokens_out, cost)
    model = completion.model or body["model"]
    ctx.set_meta("model", model)
    result: dict[str, Any] = {
        "content": completion.content,
        "role": completion.role,
        "finish_reason": completion.finish_reason,
        "model": model,
        "usage": usage,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd": cost,
        "cost_basis": basis,
        "streamed": body["stream"],
        "attempts": attempts,
        "latency_ms": int(elapsed_s * 1000),
        # wall-clock output speed of this request (prompt processing included)
        "tokens_per_s": round(tokens_out / elapsed_s, 1) if tokens_out and elapsed_s > 0 else None,
    }
    if completion.tool_calls:
        result["tool_calls"] = completion.tool_calls
    if usage is None:
        result["usage_note"] = NO_STREAM_USAGE if body["stream"] else "no usage in the response"
    return result


def handlers(
    config: LLMConfig | Mapping[str, Any] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Handler]:
    """``{"llm": handler}`` for a worker. A mapping (or None) is laid over ``WORLDPOOL_LLM_*``."""
    cfg = config if isinstance(config, LLMConfig) else LLMConfig.from_env(overrides=config)

    async def llm(ctx: TaskContext) -> dict[str, Any]:
        return await chat(ctx, cfg, transport)

    return {"llm": llm}
