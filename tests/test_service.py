"""Process tuning for the long-running services."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from worldpool.service import GC_YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_start_up_objects_and_collects_young_objects_less_often() -> None:
    gc.set_threshold(700, 10, 10)
    before = gc.get_freeze_count()

    tune_gc()

    assert gc.get_freeze_count() > before
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    gc.set_threshold(50_000, 10, 10)
    tune_gc()  # never lowers a threshold someone set higher
    assert gc.get_threshold()[0] == 50_000
