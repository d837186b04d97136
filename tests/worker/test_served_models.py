"""Workers measure what their LLM endpoint serves: the real local model, and the fake."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import free_port
from worldpool.executors.llm_local import MODEL_ALIAS, LocalLLMServer
from worldpool.models import Location, ServedModel, WorkerProfile
from worldpool.worker.served_models import (
    UNREPORTED_CONTEXT,
    Listed,
    _context_of,
    claim_problems,
    measure_served,
    moved,
    with_measured_models,
)


@pytest.mark.slow
async def test_the_real_endpoint_is_measured_and_a_claim_it_cannot_back_refused(
    local_llm: LocalLLMServer,
) -> None:
    boast = ServedModel(name=MODEL_ALIAS, tokens_per_s=100_000, concurrent_requests=8)
    profile = WorkerProfile(id="gpu-1", location=Location(region="local"))
    profile.hardware.models = [boast]
    measured, problems = await with_measured_models(profile, local_llm.base_url)
    [model] = measured.hardware.models
    assert model.name == MODEL_ALIAS and model.measured_at is not None
    assert 0 < model.tokens_per_s < 100_000  # the measured figure replaced the claim
    # llama-cpp-python's server answers one request at a time (a lock around the model);
    # the measure is by timing (on a busy 2-core machine it has read 2): what must hold is
    # that the measured figure, not the claim, is advertised.
    assert model.concurrent_requests < boast.concurrent_requests
    assert model.context_tokens == boast.context_tokens  # the endpoint does not say
    assert any("claims 100000 tokens/s" in p for p in problems), problems
    assert any("claims 8 concurrent requests" in p for p in problems), problems


@pytest.mark.slow
async def test_llm_model_flag_is_advertised_from_the_endpoint(local_llm: LocalLLMServer) -> None:
    served, problems = await measure_served(local_llm.base_url, default_model=MODEL_ALIAS)
    assert problems == [] and [m.name for m in served] == [MODEL_ALIAS]
    assert served[0].context_tokens == UNREPORTED_CONTEXT


async def test_a_claimed_model_the_endpoint_does_not_serve_is_refused() -> None:
    with FakeOpenAI(model="fake-model") as server:
        served, problems = await measure_served(server.base_url, [ServedModel(name="qwen3-235b")])
    assert served == []
    assert problems == [f"claims the model 'qwen3-235b' but {server.base_url} serves: fake-model"]


async def test_an_endpoint_that_is_down_is_a_problem_not_a_crash() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    served, problems = await measure_served(url, default_model="m", timeout_s=2)
    assert served == [] and problems[0].startswith(
        f"cannot list the models of the LLM endpoint {url}"
    )


def test_context_is_read_where_engines_report_it() -> None:
    assert _context_of({"id": "m", "max_model_len": 131072}) == 131072  # vLLM
    assert _context_of({"id": "m", "meta": {"n_ctx": 4096}}) == 4096  # llama.cpp's server
    assert _context_of({"id": "m"}) is None
    assert Listed("m").context_tokens is None


def test_claims_beyond_the_measured_figures() -> None:
    measured = ServedModel(name="m", context_tokens=8192, tokens_per_s=20, concurrent_requests=2)
    fair = ServedModel(name="m", context_tokens=8192, tokens_per_s=30, concurrent_requests=4)
    assert claim_problems(fair, measured, reported=8192) == []  # within the slack
    greedy = ServedModel(name="m", context_tokens=32768, tokens_per_s=50, concurrent_requests=8)
    problems = claim_problems(greedy, measured, reported=8192)
    assert [p.split(" for ")[0] for p in problems] == [
        "claims 32768 tokens of context",
        "claims 50 tokens/s",
        "claims 8 concurrent requests",
    ]


def test_re_measurement_reports_only_real_moves() -> None:
    a = [ServedModel(name="m", tokens_per_s=20, concurrent_requests=2)]
    assert not moved(a, [a[0].model_copy(update={"tokens_per_s": 22})])
    assert moved(a, [a[0].model_copy(update={"tokens_per_s": 10})])
    assert moved(a, [a[0].model_copy(update={"concurrent_requests": 4})])
    assert moved(a, [])


def test_the_worker_command_advertises_the_measured_model_and_refuses_a_false_claim(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from worldpool.cli.app import app

    claim = tmp_path / "gpu.toml"
    claim.write_text('[[hardware.models]]\nname = "qwen3-235b"\n')
    with FakeOpenAI(model="fake-model") as server:
        args = ["worker", "--region", "tokyo", "--llm-url", server.base_url, "--llm-model"]
        args += ["fake-model"]
        ok = CliRunner().invoke(app, [*args, "--print-profile"])
        boast = CliRunner().invoke(app, [*args, "--profile", str(claim), "--print-profile"])
    out = ok.output
    profile = orjson.loads(out[out.index("{") : out.rindex("}") + 1])
    [model] = profile["hardware"]["models"]
    assert model["name"] == "fake-model" and model["measured_at"] is not None
    assert model["tokens_per_s"] > 0
    assert "claims the model 'qwen3-235b'" in boast.output


async def test_re_measuring_now_and_then_re_advertises_moved_figures() -> None:
    import asyncio

    from worldpool.worker.served_models import remeasure_loop

    stale = [ServedModel(name="fake-model", tokens_per_s=1e6, measured_at=1.0)]
    changed: list[list[ServedModel]] = []

    async def on_change(served: list[ServedModel]) -> None:
        changed.append(served)

    with FakeOpenAI(model="fake-model") as server:
        loop = asyncio.create_task(
            remeasure_loop(server.base_url, lambda: stale, on_change, interval_s=0.01)
        )
        for _ in range(200):
            await asyncio.sleep(0.02)
            if changed:
                break
        loop.cancel()
    [fresh] = changed[0]
    assert fresh.name == "fake-model" and fresh.tokens_per_s < 1e6
    assert fresh.measured_at is not None and fresh.measured_at > 1.0
