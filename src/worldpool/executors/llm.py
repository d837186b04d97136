"""The ``llm`` handler: chat completions against any OpenAI-compatible server.

vLLM, SGLang, Ollama, llama.cpp's server and hosted APIs all speak
``POST {base_url}/chat/completions``; a worker is configured with one :class:`LLMConfig`
(base URL, default model, the *name* of the environment variable holding the API key,
prices). A step's payload::

    {"messages": [{"role": "user", "content": "Hi"}],   # or "prompt": "Hi" (+ "system")
     "model": "override-model", "max_tokens": 256, "temperature": 0.2, "stream": true}

Rate limits (429) and server errors (5xx) are retried here with exponential backoff and
jitter, honouring ``Retry-After``; a server that is down or answers garbage fails the step
with a retryable error, so the orchestrator can try another worker. Tokens come from the
response's ``usage`` (for streams: the last chunk, asked for with
``stream_options.include_usage``); cost from the per-token prices, else from the worker's
``cost_per_hour`` times the time spent.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worldpool.errors import ConfigError, HandlerError
from worldpool.worker.handlers import Handler, TaskContext

ENV_PREFIX = "WORLDPOOL_LLM_"
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 3
NO_STREAM_USAGE = (
    "the server sent no usage in its stream (it ignored "
    "stream_options.include_usage); tokens were not counted"
)
_sleep = asyncio.sleep  # the one seam tests replace to observe backoff without waiting


class LLMConfig(BaseModel):
    """One worker's LLM endpoint. ``base_url`` ends where ``/chat/completions`` is appended,
    usually in ``/v1`` (``http://127.0.0.1:8000/v1`` for vLLM, ``:11434/v1`` for Ollama)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(pattern=r"^https?://[^/\s]+")
    model: str = Field(min_length=1)
    api_key_env: str = "OPENAI_API_KEY"
    price_in_per_mtok: float | None = Field(default=None, ge=0, description="USD per 1M in")
    price_out_per_mtok: float | None = Field(default=None, ge=0, description="USD per 1M out")
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, le=20)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=20.0, ge=0)
    retry_after_max_s: float = Field(default=60.0, ge=0)
    stream_usage: bool = Field(default=True, description="send stream_options.include_usage")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> LLMConfig:
        """Read ``WORLDPOOL_LLM_BASE_URL``, ``WORLDPOOL_LLM_MODEL``, ... (one per field);
        ``overrides`` (a worker's config file section) win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env
        }
        values.update(overrides or {})
        if "base_url" not in values or "model" not in values:
            raise ConfigError(
                f"LLM worker needs {ENV_PREFIX}BASE_URL (e.g. "
                f"http://127.0.0.1:8000/v1) and {ENV_PREFIX}MODEL"
            )
        return _validated(values)


def _validated(values: Mapping[str, Any]) -> LLMConfig:
    try:
        return LLMConfig.model_validate(dict(values))
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid LLM config: {reasons}") from None


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


@dataclass
class Completion:
    content: str = ""
    role: str = "assistant"
    finish_reason: str | None = None
    model: str = ""
    usage: dict[str, int] | None = None
    tool_calls: list[Any] = field(default_factory=list)


@dataclass
class RetryLater:
    """A 429 or 5xx answer: worth another try after ``retry_after_s`` (None: use backoff)."""

    status: int
    detail: str
    retry_after_s: float | None


# --------------------------------------------------------------------------- pure helpers


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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
    """(USD, basis): per-token prices when set and usage is known, else time on the worker."""
    priced = config.price_in_per_mtok is not None or config.price_out_per_mtok is not None
    if usage is not None and priced:
        cost = (
            usage.get("prompt_tokens", 0) * (config.price_in_per_mtok or 0.0)
            + usage.get("completion_tokens", 0) * (config.price_out_per_mtok or 0.0)
        ) / 1e6
        return cost, "per_token"
    return cost_per_hour * elapsed_s / 3600.0, "per_hour"


def _usage(raw: Any) -> dict[str, int] | None:
    if not isinstance(raw, dict):
        return None
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    usage = {k: int(raw[k]) for k in keys if isinstance(raw.get(k), int | float)}
    if not usage:
        return None
    usage.setdefault(
        "total_tokens", usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    )
    return usage


def _merge_tool_call(calls: dict[int, dict[str, Any]], delta: Any) -> None:
    """Streamed tool calls arrive in pieces keyed by index; names and arguments concatenate."""
    if not isinstance(delta, dict):
        return
    slot = calls.setdefault(
        int(delta.get("index", len(calls))),
        {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
    )
    slot["id"] = delta.get("id") or slot["id"]
    function = delta.get("function") or {}
    for key in ("name", "arguments"):
        slot["function"][key] += function.get(key) or ""


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _error_detail(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return _excerpt(response.text) or response.reason_phrase
    return _excerpt(str(message))


def parse_completion(data: bytes, where: str) -> Completion:
    """A non-streamed answer; HandlerError(retryable) when it is not a chat completion."""
    try:
        obj = json.loads(data)
    except ValueError:
        raise HandlerError(
            f"{where} answered something that is not JSON: "
            f"{_excerpt(data.decode(errors='replace'))!r}",
            retryable=True,
        ) from None
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if (
        not choices
        or not isinstance(choices[0], dict)
        or not isinstance(choices[0].get("message"), dict)
    ):
        raise HandlerError(
            f"{where} answered JSON that is not a chat completion (no "
            f"choices[0].message): {_excerpt(json.dumps(obj))!r}",
            retryable=True,
        )
    message = choices[0]["message"]
    return Completion(
        content=message.get("content") or "",
        role=message.get("role", "assistant"),
        finish_reason=choices[0].get("finish_reason"),
        model=obj.get("model", ""),
        usage=_usage(obj.get("usage")),
        tool_calls=message.get("tool_calls") or [],
    )


# --------------------------------------------------------------------------- I/O


class _Caller:
    """One step's requests: builds them, classifies answers, reads streams."""

    def __init__(self, ctx: TaskContext, config: LLMConfig, client: httpx.AsyncClient) -> None:
        self.ctx, self.config, self.client = ctx, config, client
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.where = f"LLM server at {config.base_url}"
        self.headers = {"Accept": "application/json"}
        key = os.environ.get(config.api_key_env)
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def _refused(self, response: httpx.Response, detail: str) -> RetryLater:
        """Classify an error status: RetryLater for 429/5xx, else raise non-retryable."""
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return RetryLater(status, detail, retry_after)
        hint = {
            401: f"; check the API key in ${self.config.api_key_env}",
            403: f"; check the API key in ${self.config.api_key_env}",
            404: "; check base_url (it usually ends in /v1) and the model name",
        }.get(status, "")
        raise HandlerError(
            f"{self.where} refused the request with {status}: {detail}{hint}", retryable=False
        )

    async def once(self, body: dict[str, Any]) -> Completion | RetryLater:
        if not body["stream"]:
            response = await self.client.post(self.url, json=body, headers=self.headers)
            if response.status_code >= 400:
                return self._refused(response, _error_detail(response))
            return parse_completion(response.content, self.where)
        async with self.client.stream("POST", self.url, json=body, headers=self.headers) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                return self._refused(resp, _error_detail(resp))
            return await self._read_stream(resp)

    async def _read_stream(self, response: httpx.Response) -> Completion:
        """Assemble Server-Sent Events ``data:`` lines into one completion."""
        out = Completion()
        parts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        done = False
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": comments", event:/id:/retry: fields
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise HandlerError(
                    f"{self.where} streamed a line that is not JSON: {_excerpt(data)!r}",
                    retryable=True,
                ) from None
            if not isinstance(chunk, dict):
                raise HandlerError(
                    f"{self.where} streamed {_excerpt(data)!r}, not an object", retryable=True
                )
            if "error" in chunk:
                detail = _excerpt(str(chunk["error"]))
                raise HandlerError(f"{self.where} failed mid-stream: {detail}", retryable=True)
            out.model = chunk.get("model") or out.model
            out.usage = _usage(chunk.get("usage")) or out.usage
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                parts.append(delta.get("content") or "")
                out.role = delta.get("role") or out.role
                for call in delta.get("tool_calls") or []:
                    _merge_tool_call(calls, call)
                out.finish_reason = choice.get("finish_reason") or out.finish_reason
            self.ctx.check_cancelled()
        if not done and out.finish_reason is None:
            raise HandlerError(
                f"{self.where} ended its stream before the last chunk "
                "(no finish_reason, no [DONE])",
                retryable=True,
            )
        out.content = "".join(parts)
        out.tool_calls = [calls[i] for i in sorted(calls)]
        return out


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
        caller = _Caller(ctx, config, client)
        while True:
            ctx.check_cancelled()
            attempts += 1
            outcome = await _attempt(caller, body, timeout_s)
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


async def _attempt(
    caller: _Caller, body: dict[str, Any], timeout_s: float
) -> Completion | RetryLater:
    try:
        return await caller.once(body)
    except httpx.ConnectError as exc:
        raise HandlerError(
            f"cannot connect to the {caller.where} ({exc}); is the server "
            "running and base_url right?",
            retryable=True,
        ) from exc
    except httpx.TimeoutException as exc:
        raise HandlerError(
            f"{caller.where} did not answer within {timeout_s:g}s ({type(exc).__name__})",
            retryable=True,
        ) from exc
    except httpx.HTTPError as exc:
        raise HandlerError(
            f"talking to the {caller.where} failed: {type(exc).__name__}: {exc}", retryable=True
        ) from exc


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
