"""The llm handler against the real local model (llama.cpp's server, SmolLM2-135M).

Answers are short (max_tokens <= 24) to keep CI fast; what is asserted is what a real
server does: real token counts, a real stream, real timeouts and a real crash.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.executors.context import make_ctx
from tests.local_llm import TapTransport, require_local_llm
from worldpool.errors import HandlerError
from worldpool.executors import llm
from worldpool.executors.llm import NO_STREAM_USAGE, LLMConfig, chat
from worldpool.executors.llm_local import MODEL_ALIAS, LocalLLMServer

pytestmark = pytest.mark.slow
QUESTION = "Name three colours."


def config(base_url: str, **overrides: object) -> LLMConfig:
    values: dict[str, object] = {
        "base_url": base_url,
        "model": MODEL_ALIAS,
        "timeout_s": 60.0,
        "max_retries": 2,
        "price_in_per_mtok": 0.1,
        "price_out_per_mtok": 0.4,
    }
    values.update(overrides)
    return LLMConfig.model_validate(values)


async def test_chat_counts_real_tokens_and_prices_them(local_llm: LocalLLMServer) -> None:
    ctx = make_ctx({"prompt": QUESTION, "max_tokens": 16, "temperature": 0})
    result = await chat(ctx, config(local_llm.base_url))
    assert result["content"].strip() and result["model"] == MODEL_ALIAS
    assert result["tokens_in"] > 5 and 0 < result["tokens_out"] <= 16
    assert result["usage"]["total_tokens"] == result["tokens_in"] + result["tokens_out"]
    assert result["cost_basis"] == "per_token"
    expected = (result["tokens_in"] * 0.1 + result["tokens_out"] * 0.4) / 1e6
    assert result["cost_usd"] == pytest.approx(expected)
    assert result["tokens_per_s"] > 0 and ctx.tokens_used == result["usage"]["total_tokens"]


async def test_streaming_assembles_the_real_stream(local_llm: LocalLLMServer) -> None:
    ctx = make_ctx({"prompt": QUESTION, "max_tokens": 12, "stream": True, "temperature": 0})
    result = await chat(ctx, config(local_llm.base_url))
    assert result["streamed"] and result["content"].strip()
    assert result["finish_reason"] in ("stop", "length")
    # llama-cpp-python's server ignores stream_options.include_usage: we say so, honestly.
    assert result["usage"] is None and result["usage_note"] == NO_STREAM_USAGE


async def test_a_deadline_shorter_than_the_answer_times_out(local_llm: LocalLLMServer) -> None:
    # Short even so: the server finishes an answer its client gave up on, holding the model.
    ctx = make_ctx({"prompt": "Write a long story.", "max_tokens": 24})
    with pytest.raises(HandlerError, match=r"did not answer within 0\.05s") as info:
        await chat(ctx, config(local_llm.base_url, timeout_s=0.05))
    assert info.value.retryable


async def test_a_503_in_front_of_the_real_server_is_retried(
    local_llm: LocalLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(llm, "_sleep", no_wait)
    transport = TapTransport(fail_first=1)
    ctx = make_ctx({"prompt": QUESTION, "max_tokens": 8})
    result = await chat(ctx, config(local_llm.base_url), transport)
    assert result["attempts"] == 2 and len(waited) == 1 and result["tokens_out"] > 0


async def test_cancelling_mid_stream_stops_the_step(local_llm: LocalLLMServer) -> None:
    ctx = make_ctx({"prompt": "Count to one hundred.", "max_tokens": 200, "stream": True})
    transport = TapTransport(on_first_bytes=ctx.cancelled.set)
    with pytest.raises(HandlerError, match="cancelled") as info:
        await chat(ctx, config(local_llm.base_url), transport)
    assert info.value.retryable is False


async def test_a_server_that_dies_mid_answer_fails_the_step_retryably() -> None:
    require_local_llm()
    with LocalLLMServer(threads=1) as doomed:
        ctx = make_ctx({"prompt": "Count to one hundred.", "max_tokens": 200, "stream": True})
        loop = asyncio.get_running_loop()

        def kill_soon() -> None:
            loop.call_soon(doomed.kill)

        transport = TapTransport(on_first_bytes=kill_soon)
        with pytest.raises(HandlerError) as info:
            await chat(ctx, config(doomed.base_url, max_retries=0), transport)
    assert info.value.retryable
    assert "ended its stream" in str(info.value) or "failed" in str(info.value)
