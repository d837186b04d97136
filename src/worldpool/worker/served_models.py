"""What a worker's LLM endpoint really serves, measured rather than claimed.

A worker started with ``--llm-url`` asks the endpoint's ``GET /models`` for the models it
serves (and, where the engine says, their context length: vLLM's ``max_model_len``,
``context_length``, llama.cpp's ``meta.n_ctx``), then runs a short benchmark per model:
one request for the output speed, then 2, 4, ... requests at once for the concurrency the
endpoint sustains (the largest level at which running requests together still buys at
least :data:`SCALING_GAIN` more throughput than half as many). The measured figures
replace claimed ones; a claim the endpoint cannot back (a model it does not serve, more
context than it reports, several times the measured speed or concurrency) is a problem,
and the worker refuses to start on any, as for hardware claims. :func:`remeasure_loop`
measures again now and then and re-registers the profile when the figures move.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from worldpool.models import ServedModel, WorkerProfile

log = logging.getLogger(__name__)

BENCH_PROMPT = "Count from one to fifty in words, separated by commas."
BENCH_MAX_TOKENS = 32
#: concurrency levels tried (capped by ``max_level``)
LEVELS = (1, 2, 4, 8, 16, 32)
#: running 2k requests at once must give this much more throughput than k to count
SCALING_GAIN = 1.3
#: a claimed speed or concurrency more than this many times the measured one is refused
CLAIM_SLACK = 2.0
#: context assumed when neither the endpoint nor the claim says (llama.cpp's default)
UNREPORTED_CONTEXT = 2048
_CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length")


@dataclass
class Listed:
    """A model as ``GET /models`` lists it; ``context_tokens`` None when not reported."""

    name: str
    context_tokens: int | None = None


@dataclass
class Benchmark:
    tokens_per_s: float
    concurrent_requests: int
    levels: dict[int, float] = field(default_factory=dict)  # level -> aggregate tokens/s


def _context_of(entry: dict[str, Any]) -> int | None:
    places = [entry, entry.get("meta") or {}]
    for place in places:
        for key in (*_CONTEXT_KEYS, "n_ctx"):
            value = place.get(key) if isinstance(place, dict) else None
            if isinstance(value, int) and value > 0:
                return value
    return None


def _headers(api_key_env: str) -> dict[str, str]:
    key = os.environ.get(api_key_env)
    return {"Authorization": f"Bearer {key}"} if key else {}


async def list_models(
    client: httpx.AsyncClient, base_url: str, api_key_env: str = "OPENAI_API_KEY"
) -> list[Listed]:
    """The endpoint's served models; raises httpx errors or ValueError when it cannot say."""
    response = await client.get(base_url.rstrip("/") + "/models", headers=_headers(api_key_env))
    response.raise_for_status()
    data = response.json().get("data")
    if not isinstance(data, list):
        raise ValueError(f"{base_url}/models answered without a 'data' list")
    return [
        Listed(str(e["id"]), _context_of(e)) for e in data if isinstance(e, dict) and e.get("id")
    ]


async def _one(
    client: httpx.AsyncClient, base_url: str, model: str, max_tokens: int, headers: dict[str, str]
) -> int:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": BENCH_PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    response = await client.post(
        base_url.rstrip("/") + "/chat/completions", json=body, headers=headers
    )
    response.raise_for_status()
    usage = response.json().get("usage") or {}
    tokens = usage.get("completion_tokens")
    if not isinstance(tokens, int):
        raise ValueError("the endpoint's answer has no usage.completion_tokens")
    return tokens


async def benchmark(
    client: httpx.AsyncClient,
    base_url: str,
    model: str,
    *,
    max_level: int = 8,
    max_tokens: int = BENCH_MAX_TOKENS,
    api_key_env: str = "OPENAI_API_KEY",
) -> Benchmark:
    """Output speed of one request, then the concurrency the endpoint sustains."""
    headers = _headers(api_key_env)
    await _one(client, base_url, model, 4, headers)  # warm-up: page the model in, fill caches
    levels: dict[int, float] = {}
    sustained = 1
    for level in (lv for lv in LEVELS if lv <= max(1, max_level)):
        started = time.perf_counter()
        tokens = await asyncio.gather(
            *(_one(client, base_url, model, max_tokens, headers) for _ in range(level))
        )
        levels[level] = sum(tokens) / max(1e-6, time.perf_counter() - started)
        if level == 1:
            continue
        if levels[level] < levels[level // 2] * SCALING_GAIN:
            break  # running more at once no longer buys throughput
        sustained = level
    return Benchmark(round(levels[1], 1), sustained, levels)


async def measure_served(
    base_url: str,
    claimed: Sequence[ServedModel] = (),
    *,
    default_model: str | None = None,
    max_level: int = 8,
    api_key_env: str = "OPENAI_API_KEY",
    timeout_s: float = 60.0,
) -> tuple[list[ServedModel], list[str]]:
    """(the served models with measured figures, problems with the claims).

    Measured: every claimed model, ``default_model`` (``--llm-model``), or, when neither
    names one, every listed model. A claimed model keeps its claimed context only when the
    endpoint reports none."""
    problems: list[str] = []
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        try:
            listed = {m.name: m for m in await list_models(client, base_url, api_key_env)}
        except (httpx.HTTPError, ValueError) as exc:
            return [], [f"cannot list the models of the LLM endpoint {base_url}: {exc}"]
        by_claim = {m.name: m for m in claimed}
        wanted = list(by_claim) + ([default_model] if default_model else [])
        names = list(dict.fromkeys(wanted)) or list(listed)
        served: list[ServedModel] = []
        for name in names:
            if name not in listed:
                have = ", ".join(sorted(listed)) or "none"
                problems.append(f"claims the model {name!r} but {base_url} serves: {have}")
                continue
            claim = by_claim.get(name)
            level_cap = max(max_level, claim.concurrent_requests if claim else 1)
            try:
                bench = await benchmark(
                    client, base_url, name, max_level=level_cap, api_key_env=api_key_env
                )
            except (httpx.HTTPError, ValueError) as exc:
                problems.append(f"cannot benchmark {name!r} at {base_url}: {exc}")
                continue
            model = ServedModel(
                name=name,
                context_tokens=listed[name].context_tokens
                or (claim.context_tokens if claim else UNREPORTED_CONTEXT),
                tokens_per_s=bench.tokens_per_s,
                concurrent_requests=bench.concurrent_requests,
                measured_at=time.time(),
            )
            if claim is not None:
                problems += claim_problems(claim, model, listed[name].context_tokens)
            log.info(
                "%s: %s tokens/s, %d concurrent, %d context",
                name,
                model.tokens_per_s,
                model.concurrent_requests,
                model.context_tokens,
            )
            served.append(model)
    return served, problems


def claim_problems(claim: ServedModel, measured: ServedModel, reported: int | None) -> list[str]:
    """What ``claim`` says that ``measured`` (and the reported context) cannot back."""
    out = []
    if reported is not None and claim.context_tokens > reported:
        out.append(
            f"claims {claim.context_tokens} tokens of context for {claim.name!r} but the "
            f"endpoint serves {reported}"
        )
    if claim.tokens_per_s > measured.tokens_per_s * CLAIM_SLACK:
        out.append(
            f"claims {claim.tokens_per_s:g} tokens/s for {claim.name!r} but measured "
            f"{measured.tokens_per_s:g}"
        )
    if claim.concurrent_requests > measured.concurrent_requests * CLAIM_SLACK:
        out.append(
            f"claims {claim.concurrent_requests} concurrent requests for {claim.name!r} but "
            f"the endpoint sustained {measured.concurrent_requests}"
        )
    return out


def moved(old: Sequence[ServedModel], new: Sequence[ServedModel], tolerance: float = 0.2) -> bool:
    """True when a model appeared or went, or a figure moved by more than ``tolerance``."""
    before = {m.name: m for m in old}
    if set(before) != {m.name for m in new}:
        return True
    for m in new:
        was = before[m.name]
        if m.concurrent_requests != was.concurrent_requests:
            return True
        if abs(m.tokens_per_s - was.tokens_per_s) > tolerance * max(was.tokens_per_s, 1e-6):
            return True
    return False


async def remeasure_loop(
    base_url: str,
    current: Callable[[], Sequence[ServedModel]],
    on_change: Callable[[list[ServedModel]], Awaitable[None]],
    *,
    interval_s: float = 600.0,
    api_key_env: str = "OPENAI_API_KEY",
) -> None:
    """Every ``interval_s``: measure again; call ``on_change`` when the figures moved.

    Problems found later (the endpoint went away) are logged, not fatal: the worker keeps
    its last figures and tries again next time."""
    while True:
        await asyncio.sleep(interval_s)
        was = list(current())
        claims = [m.model_copy(update={"measured_at": None}) for m in was]
        try:
            served, problems = await measure_served(
                base_url, claims, max_level=8, api_key_env=api_key_env
            )
        except Exception:  # a measuring bug must not kill the worker
            log.exception("re-measuring the LLM endpoint failed")
            continue
        for problem in problems:
            log.warning("re-measuring the LLM endpoint: %s", problem)
        if served and moved(was, served):
            await on_change(served)


async def with_measured_models(
    profile: WorkerProfile, base_url: str, default_model: str | None = None
) -> tuple[WorkerProfile, list[str]]:
    """``profile`` advertising what ``base_url`` measurably serves, and the claim problems."""
    served, problems = await measure_served(
        base_url, profile.hardware.models, default_model=default_model
    )
    hardware = profile.hardware.model_copy(update={"models": served})
    return profile.model_copy(update={"hardware": hardware}), problems
