"""The HTTP side of the ``llm`` executor: a client of one OpenAI-compatible server.

vLLM, SGLang, Ollama, llama.cpp's server and hosted APIs all speak
``POST {base_url}/chat/completions``. :class:`LLMConfig` is a worker's endpoint (base URL,
default model, the *name* of the environment variable holding the API key, prices,
retry bounds); :class:`ChatClient` sends one request and reads the answer, plain or
streamed (Server-Sent Events), into a :class:`Completion`, or says :class:`RetryLater`
for a 429 or 5xx. Anything else that goes wrong is a :class:`HandlerError`: retryable when
the server is down or answers garbage, not when it refuses the request.

The retry loop, the cost and the step's result are the handler's (:mod:`.llm`).
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worldpool.errors import ConfigError, HandlerError
from worldpool.worker.handlers import TaskContext

ENV_PREFIX = "WORLDPOOL_LLM_"
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 3


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


class ChatClient:
    """One step's requests: sends them, classifies answers, reads streams."""

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

    async def attempt(self, body: dict[str, Any], timeout_s: float) -> Completion | RetryLater:
        """:meth:`once`, with transport failures as retryable HandlerErrors."""
        try:
            return await self.once(body)
        except httpx.ConnectError as exc:
            raise HandlerError(
                f"cannot connect to the {self.where} ({exc}); is the server "
                "running and base_url right?",
                retryable=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise HandlerError(
                f"{self.where} did not answer within {timeout_s:g}s ({type(exc).__name__})",
                retryable=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise HandlerError(
                f"talking to the {self.where} failed: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
