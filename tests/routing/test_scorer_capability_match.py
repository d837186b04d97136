from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing.scorers.capability_match import CapabilityMatchScorer

ALL = np.arange(3)


def _snap() -> object:
    return pool(
        worker("specialist", caps=("coding",)),
        worker("generalist", caps=("coding", "planning", "reviewing", "research")),
        worker("llm", caps=("coding", "planning"), models=("qwen-coder",)),
    )


def test_specialists_score_higher() -> None:
    s = CapabilityMatchScorer().score(ctx(task(capabilities=["coding"])), _snap(), ALL)
    assert s is not None
    assert s.tolist() == pytest.approx([1.0, 0.25, 0.5])


def test_nothing_required_scores_everyone_one() -> None:
    s = CapabilityMatchScorer().score(ctx(task()), _snap(), ALL)
    assert s is not None and s.tolist() == [1.0, 1.0, 1.0]


def test_serving_the_requested_model_earns_a_bonus() -> None:
    spec = task(capabilities=["coding"], payload={"model": "QWEN-coder"})
    s = CapabilityMatchScorer().score(ctx(spec), _snap(), ALL)
    assert s is not None
    assert s.tolist() == pytest.approx([0.8, 0.2, 0.8 * 0.5 + 0.2])
