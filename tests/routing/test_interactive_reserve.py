"""The interactive reserve: slots a task that is not interactive may not take."""

from __future__ import annotations

import pytest

from tests.routing.builders import assert_mask_matches_verdicts, ctx, pool, task, worker
from worldpool.config import Settings
from worldpool.errors import ConfigError
from worldpool.models import WorkerState
from worldpool.routing import Router, RoutingPolicy
from worldpool.routing.engine import WAITING_FOR_SLOT
from worldpool.routing.filters.capacity import CapacityFilter, reserved_slots, worker_fraction


def test_a_batch_task_may_not_take_the_last_free_slot_an_interactive_task_may() -> None:
    snap = pool(
        worker("one-left", slots=8, running=7),
        worker("two-left", slots=8, running=6),
        worker("solo", slots=1),
    )
    f = CapacityFilter(reserve=1)
    batch, chat = ctx(task()), ctx(task(interactive=True))

    assert f.mask(batch, snap).tolist() == [False, True, True]
    assert f.mask(chat, snap).tolist() == [True, True, True]
    for c in (batch, chat):
        assert_mask_matches_verdicts(f, c, snap)
    verdict = f.verdict(batch, snap.workers[0])
    assert (verdict.code, verdict.reason) == (
        "reserved",
        "has 1 of 8 slots free, kept for interactive work (this worker keeps 1: "
        "interactive_reserve=1); this task is not interactive",
    )
    assert f.failures(batch, snap)["reserved"].tolist() == [True, False, False]


def test_a_one_slot_worker_keeps_nothing_back_so_batch_work_never_waits_for_ever() -> None:
    # Every worker keeps at least one slot any task may take: reserve <= slots - 1.
    assert [reserved_slots(s, 1, 0.0) for s in (1, 2, 8)] == [0, 1, 1]
    assert [reserved_slots(s, 3, 0.0) for s in (1, 2, 3, 4)] == [0, 1, 2, 3]
    snap = pool(worker("solo", slots=1), worker("pair", slots=2, running=1))
    f = CapacityFilter(reserve=5)
    batch = ctx(task())
    assert f.mask(batch, snap).tolist() == [True, False]
    snap.update_state(WorkerState(worker_id="pair", running=0))
    assert f.mask(batch, snap).tolist() == [True, True]
    assert_mask_matches_verdicts(f, batch, snap)


def test_a_share_keeps_that_share_of_a_pools_slots_rounded_per_worker() -> None:
    # Whole slots: the same on every worker; the larger of the two counts applies.
    assert [reserved_slots(s, 0, 0.125, "w") for s in (8, 32)] == [1, 4]
    assert [reserved_slots(s, 2, 0.125, "w") for s in (8, 32)] == [2, 4]
    assert reserved_slots(100, 0, 0.29, "w") == 29  # 0.29 x 100 = 28.999...: no fraction
    # 0.05 x 8 = 0.4 slot: rounded up on about 4 workers in 10, always the same ones.
    ids = [f"gpu-{i:03d}" for i in range(1000)]
    kept = [reserved_slots(8, 0, 0.05, i) for i in ids]
    assert set(kept) == {0, 1}
    assert 370 <= sum(kept) <= 430  # a hash, not a count: near 400 of 1000
    assert kept == [reserved_slots(8, 0, 0.05, i) for i in ids]
    assert [reserved_slots(8, 0, 0.05, i) for i in ids] == [
        int(worker_fraction(i) < 0.4) for i in ids
    ]


def test_the_kept_column_is_the_verdicts_count_on_every_worker() -> None:
    workers = [worker(f"w{i:02d}", slots=s, running=s - 1) for i, s in enumerate((4, 8, 32) * 8)]
    snap = pool(*workers)
    f = CapacityFilter(share=0.05)
    batch = ctx(task())
    assert f.kept(snap).tolist() == [
        reserved_slots(w.profile.max_concurrency, 0, 0.05, w.id) for w in workers
    ]
    assert_mask_matches_verdicts(f, batch, snap)
    blocked = [
        w for w, passes in zip(workers, f.mask(batch, snap).tolist(), strict=True) if not passes
    ]
    assert blocked and all(
        "interactive_reserve_share=0.05" in f.verdict(batch, w).reason for w in blocked
    )


def test_the_lean_and_full_paths_agree_and_say_why_the_task_waits() -> None:
    snap = pool(worker("a", slots=4, running=3), worker("b", slots=4, running=4))
    router = Router(RoutingPolicy(interactive_reserve=1))
    batch = ctx(task())

    lean = router.decide(batch, snap, explain=False)
    full = router.decide(batch, snap)

    assert lean.winner is None and full.winner is None
    assert lean.reasons == [
        f"{WAITING_FOR_SLOT}: 2 workers fit but all are busy or keep their last free slots "
        "for interactive work (interactive_reserve=1)"
    ]
    assert full.excluded_by == {"capacity:full": 1, "capacity:reserved": 1}
    assert full.reasons[0] == (
        "no online worker has a free slot beyond those kept for interactive work"
    )
    assert full.suggestion == (
        "wait for a free slot: 2 workers fit but all are busy or keep their last free slots "
        "for interactive work (best: a, which has 1 of 4 slots free, kept for interactive "
        "work (this worker keeps 1: interactive_reserve=1); this task is not interactive); a smaller "
        "interactive reserve would let it take them"
    )
    miss = next(c for c in full.candidates if c.worker_id == "a")
    assert (miss.verdicts[0].code, miss.verdicts[0].ok) == ("reserved", False)
    # An interactive task takes the kept slot.
    assert router.decide(ctx(task(interactive=True)), snap).winner == "a"
    assert router.decide(ctx(task(interactive=True)), snap, explain=False).winner == "a"


def test_without_a_reserve_nothing_changes() -> None:
    snap = pool(worker("a", slots=4, running=3))
    assert Router(RoutingPolicy()).decide(ctx(task()), snap).winner == "a"
    full = Router(RoutingPolicy()).decide(ctx(task()), pool(worker("a", slots=1, running=1)))
    assert full.suggestion is not None and "interactive" not in full.suggestion


def test_the_reserve_is_read_from_the_environment_and_validated() -> None:
    env = {"WORLDPOOL_INTERACTIVE_RESERVE": "2", "WORLDPOOL_INTERACTIVE_RESERVE_SHARE": "0.25"}
    policy = RoutingPolicy.from_settings(Settings.from_env(env))
    assert (policy.interactive_reserve, policy.interactive_reserve_share) == (2, 0.25)
    assert policy.reserves_slots and not RoutingPolicy().reserves_slots
    with pytest.raises(ConfigError, match="WORLDPOOL_INTERACTIVE_RESERVE"):
        Settings.from_env({"WORLDPOOL_INTERACTIVE_RESERVE": "-1"})
    with pytest.raises(ConfigError, match="WORLDPOOL_INTERACTIVE_RESERVE_SHARE"):
        Settings.from_env({"WORLDPOOL_INTERACTIVE_RESERVE_SHARE": "1"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interactive_reserve": -1}, "whole number of slots"),
        ({"interactive_reserve": 1.5}, "whole number of slots"),
        ({"interactive_reserve": True}, "whole number of slots"),
        ({"interactive_reserve_share": 1.0}, r"in \[0, 1\)"),
        ({"interactive_reserve_share": float("nan")}, r"in \[0, 1\)"),
    ],
)
def test_bad_reserves_are_rejected_with_a_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RoutingPolicy(**kwargs)  # type: ignore[arg-type]
