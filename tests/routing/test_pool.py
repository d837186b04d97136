from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import NOW, pool, worker
from worldpool.errors import NotFoundError
from worldpool.models import WorkerState, WorkerStatus
from worldpool.routing import PoolSnapshot
from worldpool.routing.pool import COLUMNS


def test_columns_describe_each_worker_in_row_order() -> None:
    snap = pool(
        worker("a", gpus=(("A100-80GB", 80), ("A100-40GB", 40)), cost=2.5, slots=4, running=1),
        worker("b", region="europe-west1", memory_gb=64, cpus=16, latency_ms=12.0),
    )
    assert [w.id for w in snap.workers] == ["a", "b"]
    assert len(snap) == 2 and snap.row_of("b") == 1
    assert snap.gpu_count.tolist() == [2, 0]
    assert snap.max_vram_gb.tolist() == [80.0, 0.0]
    assert snap.memory_gb.tolist() == [16.0, 64.0]
    assert snap.cpus.tolist() == [4, 16]
    assert snap.free_slots.tolist() == [3, 2]
    assert snap.cost_per_hour.tolist() == [2.5, 1.0]
    # measured latency wins over the profile's estimate
    assert snap.latency_ms.tolist() == [50.0, 12.0]
    assert snap.regions[snap.region_index[1]] == "europe-west1"
    assert "a100-80gb" in snap.gpu_models[snap.gpu_model_index[0]]
    assert snap.online.tolist() == [True, True]


def test_update_state_patches_one_row_in_place() -> None:
    snap = pool(worker("a", slots=3), worker("b"))
    snap.refresh()
    running_column = snap.running
    snap.update_state(WorkerState(worker_id="a", running=2, last_heartbeat=NOW, latency_ms=7.0))
    assert snap.running is running_column  # patched, not rebuilt
    assert snap.running.tolist() == [2, 0]
    assert snap.free_slots.tolist() == [1, 2]
    assert snap.latency_ms[0] == 7.0
    assert snap.workers[0].state.running == 2
    snap.update_state(WorkerState(worker_id="b", status=WorkerStatus.DRAINING))
    assert snap.online.tolist() == [True, False]


def test_upsert_with_same_profile_is_a_state_update_and_new_profile_rebuilds() -> None:
    snap = pool(worker("a"))
    snap.refresh()
    column = snap.cost_per_hour
    snap.upsert(worker("a", running=1))
    assert snap.cost_per_hour is column and snap.running[0] == 1
    snap.upsert(worker("a", cost=9.0))
    assert snap.cost_per_hour.tolist() == [9.0]


def test_remove_and_unknown_ids() -> None:
    snap = pool(worker("a"), worker("b"), worker("c"))
    snap.remove("b")
    assert [w.id for w in snap.workers] == ["a", "c"]
    assert snap.row_of("c") == 1
    with pytest.raises(NotFoundError):
        snap.row_of("b")
    with pytest.raises(NotFoundError):
        snap.remove("b")
    with pytest.raises(NotFoundError):
        snap.update_state(WorkerState(worker_id="zzz"))
    assert snap.rows_of(["c", "nope", "a"]).tolist() == [1, 0]


def test_more_than_64_capabilities_use_several_words() -> None:
    many = tuple(f"x-skill-{i}" for i in range(150))
    snap = pool(worker("all", caps=many), worker("last", caps=(many[-1], "coding")))
    assert snap.capabilities.words == 3
    assert snap.capabilities.has_all([many[0], many[140]]).tolist() == [True, False]
    assert snap.capabilities.has_all([many[-1]]).tolist() == [True, True]
    assert snap.capabilities.has_all(["coding", many[-1]]).tolist() == [False, True]
    assert snap.capabilities.has_all(["x-unheard-of"]).tolist() == [False, False]
    assert snap.capability_count.tolist() == [150, 2]


def test_cache_index_follows_heartbeats() -> None:
    snap = pool(worker("a", cached=("d1",)), worker("b"))
    assert snap.holders_of("d1") == {"a"}
    snap.update_state(WorkerState(worker_id="a", cached=["d2"]))
    snap.update_state(WorkerState(worker_id="b", cached=["d2"]))
    assert snap.holders_of("d1") == frozenset() and snap.holders_of("d2") == {"a", "b"}
    snap.remove("a")
    assert snap.holders_of("d2") == {"b"}


def test_empty_pool_has_empty_columns() -> None:
    snap = PoolSnapshot()
    assert len(snap) == 0 and snap.workers == []
    assert snap.capabilities.has_all(["coding"]).shape == (0,)
    assert np.asarray(snap.free_slots).shape == (0,)


def test_memo_is_cleared_when_profiles_change() -> None:
    snap = pool(worker("a"))
    assert snap.memo("k", lambda: 1) == 1
    assert snap.memo("k", lambda: 2) == 1
    snap.upsert(worker("b"))
    assert snap.memo("k", lambda: 3) == 3


def test_a_rebuild_sets_exactly_the_declared_columns_and_a_change_drops_them() -> None:
    snap = PoolSnapshot()
    bookkeeping = set(snap.__dict__)
    snap.upsert(worker("a"))
    snap.refresh()
    assert set(snap.__dict__) - bookkeeping == set(COLUMNS)
    snap.upsert(worker("b"))  # a profile change: every column goes, the next read rebuilds
    assert not set(COLUMNS) & set(snap.__dict__)
    assert snap.ids == ["a", "b"]
