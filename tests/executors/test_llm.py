"""The llm handler against the fake OpenAI-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.executors.context import make_ctx
from tests.fake_openai import FakeOpenAI
from tests.helpers import free_port
from worldpool.errors import ConfigError, HandlerError
from worldpool.executors import llm
from worldpool.executors.llm import LLMConfig, chat

HELLO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff waits, recorded instead of slept."""
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(llm, "_sleep", fake_sleep)
    return waited


def config(server: FakeOpenAI, **overrides: object) -> LLMConfig:
    values: dict[str, object] = {
        "base_url": server.base_url,
        "model": "fake-model",
        "timeout_s": 10.0,
        "max_retries": 2,
    }
    values.update(overrides)
    return LLMConfig.model_validate(values)


async def test_completion_records_tokens_and_per_token_cost(server: FakeOpenAI) -> None:
    ctx = make_ctx({"messages": HELLO, "max_tokens": 32, "temperature": 0.1})
    cfg = config(server, price_in_per_mtok=2.0, price_out_per_mtok=10.0)
    result = await chat(ctx, cfg)

    assert result["content"] == "echo: hello there"
    assert result["finish_reason"] == "stop" and result["streamed"] is False
    # usage counts words: prompt "be brief hello there" = 4, answer "echo: hello there" = 3
    assert (result["tokens_in"], result["tokens_out"]) == (4, 3)
    assert result["cost_basis"] == "per_token"
    assert result["cost_usd"] == pytest.approx((4 * 2.0 + 3 * 10.0) / 1e6)
    assert ctx.tokens_used == 7 and ctx.cost_usd == pytest.approx(result["cost_usd"])
    assert ctx.meta["model"] == "fake-model"
    sent = server.requests[0].body
    assert sent["max_tokens"] == 32 and sent["temperature"] == 0.1 and sent["stream"] is False


async def test_stream_assembles_deltas_and_takes_usage_from_last_chunk(
    server: FakeOpenAI,
) -> None:
    ctx = make_ctx(
        {"prompt": "one two three", "system": "terse", "stream": True, "model": "other-model"}
    )
    result = await chat(ctx, config(server))
    assert result["content"] == "echo: one two three"
    assert result["model"] == "other-model" and result["streamed"] is True
    assert result["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
    assert ctx.tokens_used == 8
    sent = server.requests[0].body
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][0] == {"role": "system", "content": "terse"}


async def test_stream_without_usage_counts_nothing_says_so_and_leaves_time_to_worldpool() -> None:
    with FakeOpenAI(honour_include_usage=False) as server:
        ctx = make_ctx({"prompt": "hi", "stream": True}, cost_per_hour=36.0)
        result = await chat(ctx, config(server, price_in_per_mtok=1.0, price_out_per_mtok=1.0))
    assert result["content"] == "echo: hi"
    assert result["usage"] is None and ctx.tokens_used == 0
    assert "include_usage" in result["usage_note"]
    assert any("tokens were not counted" in line for line in ctx.logs)
    # Worker time is charged to the attempt by the orchestrator: billing it here too would
    # charge it twice.
    assert result["cost_basis"] == "worker_time"
    assert result["cost_usd"] == 0 and ctx.cost_usd == 0


async def test_429_is_retried_after_the_servers_retry_after(
    server: FakeOpenAI, sleeps: list[float]
) -> None:
    server.script = [429, 503]
    server.retry_after = "7"
    result = await chat(make_ctx({"prompt": "again"}), config(server))
    assert result["content"] == "echo: again"
    assert result["attempts"] == 3 and len(server.requests) == 3
    assert sleeps == [7.0, 7.0]


async def test_backoff_is_exponential_with_jitter_when_no_retry_after(
    server: FakeOpenAI, sleeps: list[float]
) -> None:
    server.script = [500, 502, 500]
    cfg = config(server, max_retries=3, backoff_initial_s=1.0, backoff_max_s=3.0)
    await chat(make_ctx({"prompt": "x"}), cfg)
    bases = [1.0, 2.0, 3.0]  # doubling, capped at backoff_max_s
    assert len(sleeps) == 3
    for waited, base in zip(sleeps, bases, strict=True):
        assert base / 2 <= waited <= base


async def test_persistent_5xx_fails_retryable_after_all_attempts(
    server: FakeOpenAI, sleeps: list[float]
) -> None:
    server.script = [500] * 5
    with pytest.raises(HandlerError) as info:
        await chat(make_ctx({"prompt": "x"}), config(server, max_retries=2))
    assert info.value.retryable is True
    assert "answered 500 on all 3 attempts: scripted status 500" in str(info.value)
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    "garbage", ["garbage", "not_completion", "garbage_stream", "truncated_stream"]
)
async def test_garbage_answers_fail_retryable(server: FakeOpenAI, garbage: str) -> None:
    server.script = [garbage]
    stream = garbage.endswith("stream")
    with pytest.raises(HandlerError) as info:
        await chat(make_ctx({"prompt": "x", "stream": stream}), config(server))
    assert info.value.retryable is True
    assert server.base_url in str(info.value)
    assert len(server.requests) == 1  # garbage is not retried here; another worker may do better


async def test_server_down_fails_retryable_with_a_clear_message() -> None:
    cfg = LLMConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    with pytest.raises(HandlerError) as info:
        await chat(make_ctx({"prompt": "x"}), cfg)
    assert info.value.retryable is True
    assert "cannot connect" in str(info.value) and "is the server running" in str(info.value)


async def test_auth_errors_are_final_and_name_the_key_variable(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "sk-test-123")
    server.script = [401]
    cfg = config(server, api_key_env="MY_LLM_KEY")
    with pytest.raises(HandlerError) as info:
        await chat(make_ctx({"prompt": "x"}), cfg)
    assert info.value.retryable is False and "$MY_LLM_KEY" in str(info.value)
    assert server.requests[0].headers["Authorization"] == "Bearer sk-test-123"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, "exactly one of 'messages' or 'prompt'"),
        ({"prompt": "a", "messages": HELLO}, "exactly one"),
        ({"prompt": "a", "temprature": 1}, "temprature: Extra inputs"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ],
)
async def test_bad_payloads_fail_before_any_request(
    server: FakeOpenAI, payload: dict[str, object], expected: str
) -> None:
    with pytest.raises(HandlerError) as info:
        await chat(make_ctx(payload), config(server))
    assert expected in str(info.value) and info.value.retryable is False
    assert server.requests == []


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert llm.parse_retry_after("2.5") == 2.5
    assert llm.parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert llm.parse_retry_after("soon") is None and llm.parse_retry_after(None) is None


async def test_handlers_factory_from_config_and_env(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLDPOOL_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("WORLDPOOL_LLM_MODEL", "env-model")
    monkeypatch.setenv("WORLDPOOL_LLM_PRICE_OUT_PER_MTOK", "5")
    table = llm.handlers()
    result = await table["llm"](make_ctx({"prompt": "from env"}))
    assert result["model"] == "env-model" and result["cost_basis"] == "per_token"

    monkeypatch.delenv("WORLDPOOL_LLM_MODEL")
    with pytest.raises(ConfigError, match="WORLDPOOL_LLM_MODEL"):
        llm.handlers()
    with pytest.raises(ConfigError, match="base_url"):
        llm.handlers({"base_url": "localhost:8000", "model": "m"})
    # a worker's config section fills in (and overrides) the environment
    assert set(llm.handlers({"model": "from-config"})) == {"llm"}
