"""Tasks that need a model with a minimum context and speed (the hardware filter)."""

from __future__ import annotations

import pytest

from tests.routing.builders import assert_mask_matches_verdicts, ctx, pool, task, worker
from worldpool.models import ServedModel, Worker
from worldpool.routing.filters.hardware import HardwareFilter


def gpu_box(wid: str, *models: ServedModel) -> Worker:
    w = worker(wid, gpus=(("H100", 80),))
    w.profile.hardware.models = list(models)
    return w


SLOW_SMALL = ServedModel(
    name="qwen3-8b", context_tokens=8192, tokens_per_s=5, concurrent_requests=1, measured_at=1.0
)
FAST_LONG = ServedModel(
    name="qwen3-8b", context_tokens=131072, tokens_per_s=50, concurrent_requests=8
)
OTHER_LONG_FAST = ServedModel(name="llama-3-70b", context_tokens=131072, tokens_per_s=40)
WORKERS = [
    gpu_box("slow", SLOW_SMALL),
    gpu_box("fast", FAST_LONG),
    gpu_box("other", OTHER_LONG_FAST),
    worker("cpu"),
]


@pytest.mark.parametrize(
    ("requirements", "expected", "code", "reason"),
    [
        (
            {"model": "qwen3-8b", "min_context_tokens": 32000},
            [False, True, False, False],
            "context",
            "serves qwen3-8b with 8192 tokens of context, task needs 32000",
        ),
        (
            {"model": "qwen3-8b", "min_tokens_per_s": 20},
            [False, True, False, False],
            "speed",
            "serves qwen3-8b at 5 tokens/s (measured), task needs 20 tokens/s",
        ),
        # Without a model name any served model counts, but one model must meet both.
        (
            {"min_context_tokens": 100000, "min_tokens_per_s": 45},
            [False, True, False, False],
            "speed",
            "llama-3-70b at 40 tokens/s (claimed), task needs 45 tokens/s",
        ),
        ({"min_tokens_per_s": 1}, [True, True, True, False], "model", "serves no LLM"),
    ],
)
def test_model_context_and_speed(
    requirements: dict[str, object], expected: list[bool], code: str, reason: str
) -> None:
    snap = pool(*WORKERS)
    f = HardwareFilter()
    c = ctx(task(requirements=requirements))
    assert f.mask(c, snap).tolist() == expected
    assert_mask_matches_verdicts(f, c, snap)
    verdicts = [f.verdict(c, w) for w in snap.workers]
    assert any(v.code == code and reason in v.reason for v in verdicts), verdicts
    assert f.describe(c, {code}) is not None


def test_a_measured_figure_changes_the_verdict_after_re_registration() -> None:
    slow = gpu_box("box", SLOW_SMALL)
    c = ctx(task(requirements={"model": "qwen3-8b", "min_tokens_per_s": 20}))
    assert HardwareFilter().mask(c, pool(slow)).tolist() == [False]
    slow.profile.hardware.models = [SLOW_SMALL.model_copy(update={"tokens_per_s": 25.0})]
    assert HardwareFilter().mask(c, pool(slow)).tolist() == [True]
