"""Liveness: silence counts only while the sweeper could reach the backend."""

from __future__ import annotations

from worldpool.models import Location, Worker, WorkerProfile, WorkerState, WorkerStatus
from worldpool.orchestrator.liveness import Liveness


def worker(
    last_heartbeat: float, seq: int = 7, status: WorkerStatus = WorkerStatus.ONLINE
) -> Worker:
    return Worker(
        profile=WorkerProfile(id="w1", location=Location(region="eu-west-1")),
        state=WorkerState(
            worker_id="w1", status=status, last_heartbeat=last_heartbeat, heartbeat_seq=seq
        ),
    )


def test_a_worker_silent_for_three_heartbeats_is_offline_and_named_with_its_last_seq() -> None:
    live = Liveness(heartbeat_s=1.0, offline_after_heartbeats=3)
    live.contact(100.0)  # the loop's first contact starts a grace
    live.contact(100.5)
    assert live.silent([worker(99.0)], 103.0) == []  # 3 s of grace from 100.0
    [(found, reason)] = live.silent([worker(99.0)], 103.1)
    assert found.id == "w1" and "missed 3 heartbeats" in reason and "#7" in reason
    assert live.silent([worker(99.0, status=WorkerStatus.OFFLINE)], 200.0) == []


def test_a_gap_in_contact_restarts_the_grace_from_the_reconnect() -> None:
    live = Liveness(heartbeat_s=1.0, offline_after_heartbeats=3)
    live.contact(100.0)
    live.contact(110.0)  # 10 s without a successful call: an outage
    assert live.grace_from == 110.0
    assert live.silent([worker(100.0)], 112.9) == []
    assert len(live.silent([worker(100.0)], 113.1)) == 1


def test_a_failed_call_restarts_the_grace_at_the_next_contact() -> None:
    live = Liveness(heartbeat_s=1.0, offline_after_heartbeats=3)
    live.contact(100.0)
    live.contact(100.5)
    live.lost_contact()
    live.contact(101.0)
    assert live.grace_from == 101.0
    assert live.silent([worker(100.0)], 103.5) == []


def test_without_contact_records_silence_counts_from_the_last_heartbeat() -> None:
    live = Liveness(heartbeat_s=1.0, offline_after_heartbeats=3)  # sweep_once called directly
    assert len(live.silent([worker(100.0)], 103.5)) == 1


def test_a_worker_that_says_it_cannot_consume_is_failed_over_at_once() -> None:
    live = Liveness(heartbeat_s=1.0, offline_after_heartbeats=3)
    stuck = worker(100.0)
    stuck.state.consuming = False
    [(found, reason)] = live.silent([stuck], 100.1)
    assert found.id == "w1" and "cannot read new work" in reason
