"""Changed profiles and removals are edited into the snapshot's columns in place, not
rebuilt: on random sequences of joins, re-joins, state changes, heartbeats, reads,
profile changes and removals, every row of every column says what a snapshot built
afresh from the same workers says, and the router decides the same on both (lean and
explained, for random tasks)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.routing.builders import NOW, ctx, worker
from tests.routing.test_pool_joins import IDS, _same, _worker
from tests.routing.test_properties import tasks
from worldpool.models import WorkerState, WorkerStatus
from worldpool.routing import PoolSnapshot, Router, RoutingPolicy, columns
from worldpool.routing.bits import BitVocab
from worldpool.routing.pool import COLUMNS, UNUSED_MAX

PROFILE = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Interned columns: the distinct values, each row's index into them (and what else is
# read through that index).
INTERNED = {
    "regions": "region_index",
    "region_locations": "region_index",
    "timezones": "timezone_index",
    "gpu_models": "gpu_model_index",
    "_coords": "coord_index",
    "coord_lat": "coord_index",
    "coord_lon": "coord_index",
}
INDEXES = set(INTERNED.values())


def _names_by_row(vocab: BitVocab) -> list[frozenset[str]]:
    return [
        frozenset(
            n for n, b in vocab.bits.items() if int(vocab.matrix[row, b // 64]) >> (b % 64) & 1
        )
        for row in range(len(vocab.matrix))
    ]


def _per_row(snap: PoolSnapshot, name: str) -> Any:
    """What column ``name`` says of each row (a name's bit number, or a distinct value's
    place in its list, is not what a row says)."""
    value = getattr(snap, name)
    if isinstance(value, BitVocab):
        return _names_by_row(value)
    if name in INTERNED:
        index = getattr(snap, INTERNED[name])
        return [value[i] for i in index.tolist()]
    return value


def _assert_rows_equal(snap: PoolSnapshot, fresh: PoolSnapshot) -> None:
    snap.refresh()
    fresh.refresh()
    for name in COLUMNS:
        if name in INDEXES:
            continue  # compared through the values they index
        left, right = _per_row(snap, name), _per_row(fresh, name)
        assert _same(left, right), name


def _decisions(router: Router, snap: PoolSnapshot, spec: Any) -> list[dict[str, Any]]:
    return [
        router.decide(ctx(spec), snap, explain=explain).model_dump(exclude={"duration_us"})
        for explain in (False, True)
    ]


@PROFILE
@given(
    data=st.data(),
    specs=st.lists(tasks(), min_size=1, max_size=3),
    few_gone=st.sampled_from([0, 16]),  # 0: every removal takes the one-pass path
)
def test_edits_in_place_equal_a_rebuild(
    data: st.DataObject, specs: list[Any], few_gone: int
) -> None:
    with patch.object(columns, "FEW_GONE", few_gone):
        _edit_and_compare(data, specs)


def _edit_and_compare(data: st.DataObject, specs: list[Any]) -> None:
    snap = PoolSnapshot()
    present: list[str] = []
    order = data.draw(st.permutations(IDS))  # joins out of id order: ranks are not rows
    for step in range(data.draw(st.integers(1, 40))):
        op = data.draw(
            st.sampled_from(["join"] * 3 + ["state", "touch", "read"] + ["change", "remove"] * 2)
        )
        free = [i for i in order if i not in present]
        if op == "join" and free:  # an id removed earlier may join again
            wid = data.draw(st.sampled_from(free))
            snap.upsert(_worker(wid, data))
            present.append(wid)
        elif op == "state" and present:
            wid = data.draw(st.sampled_from(present))
            status = data.draw(st.sampled_from(list(WorkerStatus)))
            snap.update_state(
                WorkerState(worker_id=wid, status=status, running=data.draw(st.integers(0, 5)),
                            last_heartbeat=NOW - data.draw(st.sampled_from([0.0, 60.0])))
            )  # fmt: skip
        elif op == "touch" and present:
            snap.touch(
                [(w, NOW - step / 100) for w in data.draw(st.sets(st.sampled_from(present)))]
            )
        elif op == "read":
            snap.refresh()
        elif op == "change" and present:
            wid = data.draw(st.sampled_from(present))
            snap.upsert(_worker(wid, data))
        elif op == "remove" and present:
            wid = data.draw(st.sampled_from(present))
            snap.remove(wid)
            present.remove(wid)
    fresh = PoolSnapshot(snap.workers)
    assert [w.id for w in snap.workers] == [w.id for w in fresh.workers]
    _assert_rows_equal(snap, fresh)
    router = Router(RoutingPolicy(report_candidates_max=data.draw(st.integers(1, 10))))
    for spec in specs:
        assert _decisions(router, snap, spec) == _decisions(router, fresh, spec)


def test_a_change_and_a_removal_read_only_what_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    snap = PoolSnapshot([worker("a"), worker("b", region="eu-west-1"), worker("c")])
    snap.refresh()
    kept = snap.workers[2]

    def no_build(_: object) -> None:
        raise AssertionError("the columns were built afresh")

    monkeypatch.setattr(columns, "build", no_build)
    snap.upsert(worker("a", cost=7.0, caps=("x-new",), region="ap-northeast-1"))
    snap.remove("b")
    assert not set(COLUMNS) & set(snap.__dict__)  # put aside until the next read
    assert snap.ids == ["a", "c"] and snap.row_of("c") == 1
    assert snap.workers[1] is kept  # the other rows are not read again
    assert snap.cost_per_hour.tolist() == [7.0, 1.0]
    assert snap.capabilities.rows_with("x-new").tolist() == [0]
    assert snap.regions[snap.region_index[0]] == "ap-northeast-1"
    assert snap.id_rank.tolist() == [0, 1]
    snap.remove("a")  # and a removed id joins again: appended after the others
    snap.upsert(worker("a", cost=3.0))
    assert snap.ids == ["c", "a"] and snap.cost_per_hour.tolist() == [1.0, 3.0]
    assert snap.id_rank.tolist() == [1, 0]


def test_names_nobody_holds_any_more_are_dropped_once_they_pile_up() -> None:
    snap = PoolSnapshot([worker("stays")])
    sizes = []
    for i in range(3 * UNUSED_MAX):
        snap.upsert(worker("passing", caps=(f"x-once-{i}",), labels={"host": f"h{i}"}))
        snap.refresh()
        snap.remove("passing")
        sizes.append(len(snap.capabilities.bits))
    assert max(sizes) <= UNUSED_MAX + 2  # never more than the bound (plus the live ones)
    assert any(b < a for a, b in pairwise(sizes))  # built afresh
    _assert_rows_equal(snap, PoolSnapshot(snap.workers))
    assert snap.capabilities.has_all(["x-once-0"]).tolist() == [False]
    assert np.array_equal(snap.labels.has_all(["host=h1"]), [False])


@pytest.mark.parametrize("few_gone", [0, 16])
def test_many_removals_at_once_keep_rows_and_ranks(few_gone: int) -> None:
    ids = [f"w{i:02d}" for i in (7, 3, 9, 1, 8, 0, 5, 2, 6, 4)]
    snap = PoolSnapshot([worker(i) for i in ids])
    snap.refresh()
    with patch.object(columns, "FEW_GONE", few_gone):
        for removed in (("w03", "w01", "w00", "w06"), ("w05",)):
            for wid in removed:
                snap.remove(wid)
            left = [w for w in snap.ids if w not in removed]
            assert snap.ids == left
            assert snap._sorted_ids == sorted(left)
            assert [snap.row_of(i) for i in left] == list(range(len(left)))
            assert snap.id_rank.tolist() == [sorted(left).index(i) for i in left]
        assert snap.ids == ["w07", "w09", "w08", "w02", "w04"]
        snap.upsert(worker("w01", cost=2.0))  # a removed id joins again: appended
        assert snap.ids == ["w07", "w09", "w08", "w02", "w04", "w01"]
    _assert_rows_equal(snap, PoolSnapshot(snap.workers))
