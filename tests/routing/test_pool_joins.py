"""Workers that join are appended to the snapshot's columns, not rebuilt into them: on
random sequences of joins, state changes, heartbeats and reads, every column equals that
of a snapshot built afresh from the same workers (same rows, same bits, same order of
distinct values). Changed profiles and removals: ``test_pool_edits.py``."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import examples
from tests.routing.builders import NOW, worker
from tests.routing.test_properties import CAPS, REGIONS
from worldpool.models import WorkerState, WorkerStatus
from worldpool.routing import PoolSnapshot
from worldpool.routing.bits import BitVocab
from worldpool.routing.pool import COLUMNS

PROFILE = settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
IDS = [f"w{i:02d}" for i in range(40)]
# Many names, so that joins widen a bitmask past one 64-bit word.
NAMES = [*CAPS, *(f"x-c{i}" for i in range(70))]


def _worker(wid: str, data: st.DataObject) -> Any:
    return worker(
        wid,
        region=data.draw(st.sampled_from(REGIONS)),
        caps=tuple(data.draw(st.sets(st.sampled_from(NAMES), max_size=6))),
        handlers=tuple(data.draw(st.sets(st.sampled_from(["run", "other"]), min_size=1))),
        gpus=tuple(
            data.draw(st.lists(st.sampled_from([("H100", 80.0), ("L4", 24.0)]), max_size=2))
        ),
        tools=tuple(data.draw(st.sets(st.sampled_from(["git", "chromium"])))),
        models=tuple(data.draw(st.sets(st.sampled_from(["llama", "qwen"]), max_size=1))),
        cost=data.draw(st.sampled_from([0.0, 1.5, 9.0])),
        slots=data.draw(st.integers(1, 4)),
        labels=data.draw(st.sampled_from([{}, {"tier": "gold"}, {"zone": "b"}])),
    )


def _same(left: object, right: object) -> bool:
    if isinstance(left, np.ndarray) and isinstance(right, np.ndarray):
        return left.dtype == right.dtype and np.array_equal(left, right)
    if isinstance(left, BitVocab) and isinstance(right, BitVocab):
        return left.bits == right.bits and _same(left.matrix, right.matrix)
    return left == right


@PROFILE
@given(data=st.data())
def test_joins_appended_equal_a_rebuild(data: st.DataObject) -> None:
    snap = PoolSnapshot()
    present: list[str] = []
    for step in range(data.draw(st.integers(1, 40))):
        op = data.draw(st.sampled_from(["join"] * 5 + ["state", "touch", "read", "same"]))
        free = [i for i in IDS if i not in present]
        if op == "join" and free:
            wid = data.draw(st.sampled_from(free))
            snap.upsert(_worker(wid, data))
            present.append(wid)
        elif op == "state" and present:
            wid = data.draw(st.sampled_from(present))
            status = data.draw(st.sampled_from(list(WorkerStatus)))
            snap.update_state(
                WorkerState(worker_id=wid, status=status, running=data.draw(st.integers(0, 5)),
                            last_heartbeat=NOW + step, latency_ms=data.draw(st.none() | st.just(9.0)))
            )  # fmt: skip
        elif op == "touch" and present:
            snap.touch(
                [(w, NOW + 100 + step) for w in data.draw(st.sets(st.sampled_from(present)))]
            )
        elif op == "read":
            snap.refresh()
        elif op == "same" and present:  # the same profile again: a state update
            wid = data.draw(st.sampled_from(present))
            snap.upsert(snap.workers[snap.row_of(wid)])
    snap.refresh()
    fresh = PoolSnapshot(snap.workers)
    fresh.refresh()
    for name in COLUMNS:
        assert _same(getattr(snap, name), getattr(fresh, name)), name


def test_a_join_appends_rows_and_keeps_what_was_built() -> None:
    snap = PoolSnapshot([worker("b"), worker("d")])
    snap.refresh()
    assert snap.memo("k", lambda: 1) == 1
    snap.upsert(worker("a", region="europe-west1", caps=("x-new",)))
    snap.upsert(worker("c"))
    assert not set(COLUMNS) & set(snap.__dict__)  # put aside: nobody reads short rows
    snap.update_state(WorkerState(worker_id="d", running=1, last_heartbeat=NOW))
    assert snap.ids == ["b", "d", "a", "c"]  # appended in the order they joined
    assert snap.id_rank.tolist() == [1, 3, 0, 2]
    assert snap.running.tolist() == [0, 1, 0, 0]  # the change made meanwhile is kept
    assert snap.capabilities.rows_with("x-new").tolist() == [2]
    assert snap.memo("k", lambda: 2) == 2  # derived from profiles: computed again
