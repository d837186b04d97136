"""The work-aware scorers: throughput, cost per unit of work, completion time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool.models import ArtifactRef, Requirements, ServedModel, Worker
from worldpool.routing import PoolSnapshot, Router, RoutingPolicy
from worldpool.routing.explain import explain_table
from worldpool.routing.scorers.completion_time import CompletionTimeScorer
from worldpool.routing.scorers.cost_per_work import CostPerWorkScorer
from worldpool.routing.scorers.throughput import ThroughputScorer

MODEL = "llama-70b"


def llm(wid: str, gpu: str, tps: float, conc: int, cost: float, **kw: Any) -> Worker:
    kw.setdefault("slots", conc)
    w = worker(wid, gpus=((gpu, 80.0),), cost=cost, **kw)
    hw = w.profile.hardware.model_copy(
        update={"models": [ServedModel(name=MODEL, tokens_per_s=tps, concurrent_requests=conc)]}
    )
    return w.model_copy(update={"profile": w.profile.model_copy(update={"hardware": hw})})


def boxes(**kw: Any) -> PoolSnapshot:
    # An H100 1.6x as fast and a bit dearer per hour than an A100: cheaper per token.
    return pool(llm("a100", "A100", 60.0, 8, 12.0, **kw), llm("h100", "H100", 96.0, 8, 16.0, **kw))


def llm_task(**kw: Any) -> Any:
    return task(requirements=Requirements(model=MODEL), payload={"max_tokens": 480}, **kw)


def test_throughput_is_speed_over_the_fastest_and_skips_non_llm_tasks() -> None:
    snap = boxes()
    s = ThroughputScorer().score(ctx(llm_task()), snap, np.arange(2))
    assert s is not None and s.tolist() == pytest.approx([60 / 96, 1.0])
    assert ThroughputScorer().score(ctx(task()), snap, np.arange(2)) is None


def test_a_full_batch_slows_the_next_request() -> None:
    # 15 in flight on a 16-slot H100 sustaining 8: the 16th gets 8/16 of 96 = 48 tokens/s.
    h100 = llm("h100", "H100", 96.0, 8, 16.0, running=15, slots=16)
    snap = pool(llm("a100", "A100", 60.0, 8, 12.0), h100)
    s = ThroughputScorer().score(ctx(llm_task()), snap, np.arange(2))
    assert s is not None and s.tolist() == pytest.approx([1.0, 48 / 60])


def test_cost_per_work_prices_tokens_not_hours() -> None:
    snap = boxes()
    # $/1k tokens = $/h / (3.6 * tokens/s * concurrency): A100 12/1728, H100 16/2764.8.
    s = CostPerWorkScorer().score(ctx(llm_task()), snap, np.arange(2))
    a100, h100 = 12 / (3.6 * 480), 16 / (3.6 * 768)
    assert s is not None and s.tolist() == pytest.approx([h100 / a100, 1.0])
    # Without a model the unit is a slot-hour: $/h over slots, cheapest scores 1.
    plain = CostPerWorkScorer().score(ctx(task()), snap, np.arange(2))
    assert plain is not None and plain.tolist() == pytest.approx([1.0, 12 / 16])


def test_completion_time_adds_queue_transfer_run_and_round_trip() -> None:
    snap = pool(
        llm("near", "A100", 60.0, 8, 12.0, region="us-east-1"),
        llm("far", "H100", 96.0, 8, 16.0, region="us-east-1", running=8),
    )
    ref = ArtifactRef(digest="sha256:" + "ab" * 32, name="doc.pdf", size=12_500_000)
    spec = llm_task(inputs={"doc": ref})
    est = CompletionTimeScorer()
    s = est.score(ctx(spec), snap, np.arange(2))
    # near: 480/60 = 8 s run + 1 s input (12.5 MB at 100 Mbit/s) + 50 ms = 9.05 s.
    # far: all 8 slots busy, so the 9th waits 1 * 5 s / 8 = 0.625 s, then runs 480/96 =
    # 5 s, + 1 s + 50 ms = 6.675 s: the H100 finishes sooner even behind a queue.
    near, far = 8 + 1 + 0.05, 0.625 + 5 + 1 + 0.05
    assert s is not None and s.tolist() == pytest.approx([far / near, 1.0], rel=1e-6)
    said = est.detail(ctx(spec), snap, 1)
    assert said == (
        "H100 at 96 tokens/s: queue 0.6 s + input 1.00 s + run 5.0 s + rtt 50 ms = 6.67 s"
    )
    # A cached input costs no transfer.
    cached = pool(llm("near", "A100", 60.0, 8, 12.0, cached=(ref.digest,)))
    only = est.detail(ctx(spec), cached, 0)
    assert only is not None and "input 0.00 s" in only


def test_decisions_show_each_scorers_inputs() -> None:
    policy = RoutingPolicy(
        scorers=("throughput", "cost_per_work", "completion_time"),
        weights={"throughput": 0.3, "cost_per_work": 0.3, "completion_time": 0.4},
    )
    decision = Router(policy).decide(ctx(llm_task()), boxes())
    assert decision.winner == "h100"
    best = decision.candidates[0]
    assert best.details["throughput"] == "H100 at 96 tokens/s"
    assert best.details["cost_per_work"] == "H100, $0.0058 per 1k tokens ($16.00/h)"
    assert best.details["completion_time"].startswith("H100 at 96 tokens/s: queue 0.0 s")
    assert "h100: throughput: H100 at 96 tokens/s; cost_per_work:" in explain_table(decision)
    # The explanation survives the JSON the API and dashboard serve.
    again = type(decision).model_validate_json(decision.model_dump_json())
    assert again.candidates[0].details == best.details
