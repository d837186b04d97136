from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool.models import ArtifactRef
from worldpool.routing.scorers.data_locality import DataLocalityScorer

BIG = "sha256:" + "a" * 64
SMALL = "sha256:" + "b" * 64


def test_share_of_input_bytes_held() -> None:
    snap = pool(
        worker("producer"),
        worker("cacher", cached=(SMALL,)),
        worker("told"),
        worker("none"),
    )
    spec = task(
        inputs={
            "big": ArtifactRef(digest=BIG, name="big.bin", size=900, producer="producer"),
            "small": ArtifactRef(digest=SMALL, name="small.txt", size=100),
        }
    )
    c = ctx(spec, artifact_holders={SMALL: frozenset({"told", "ghost"})})
    s = DataLocalityScorer().score(c, snap, np.arange(4))
    assert s is not None and s.tolist() == pytest.approx([0.9, 0.1, 0.1, 0.0])


def test_zero_byte_inputs_count_equally_and_no_inputs_is_not_applicable() -> None:
    snap = pool(worker("p"), worker("q"))
    spec = task(
        inputs={
            "a": ArtifactRef(digest=BIG, name="a", size=0, producer="p"),
            "b": ArtifactRef(digest=SMALL, name="b", size=0),
        }
    )
    s = DataLocalityScorer().score(ctx(spec), snap, np.arange(2))
    assert s is not None and s.tolist() == [0.5, 0.0]
    assert DataLocalityScorer().score(ctx(task()), snap, np.arange(2)) is None
