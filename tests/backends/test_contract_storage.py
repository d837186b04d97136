"""Contract: blobs with TTL, the capped event log, dead letters, leases."""

from __future__ import annotations

import asyncio

from tests.backends.conftest import CONTRACT_EVENT_LOG_MAX
from worldpool.backends import Backend
from worldpool.models import Event, EventKind

DIGEST = "sha256:" + "ab" * 32


async def test_blob_round_trip(backend: Backend) -> None:
    assert await backend.get_blob(DIGEST) is None
    assert await backend.has_blob(DIGEST) is False

    await backend.put_blob(DIGEST, b"\x00binary\xff")

    assert await backend.get_blob(DIGEST) == b"\x00binary\xff"
    assert await backend.has_blob(DIGEST) is True


async def test_blob_expires_after_its_ttl(backend: Backend) -> None:
    await backend.put_blob(DIGEST, b"short-lived", ttl_s=0.1)
    await backend.put_blob("sha256:" + "cd" * 32, b"kept", ttl_s=60)
    assert await backend.get_blob(DIGEST) == b"short-lived"

    await asyncio.sleep(0.25)

    assert await backend.get_blob(DIGEST) is None
    assert await backend.has_blob(DIGEST) is False
    assert await backend.get_blob("sha256:" + "cd" * 32) == b"kept"


def event(n: int) -> Event:
    return Event(kind=EventKind.TASK_PROGRESS, task_id=f"t{n}", message=str(n), data={"n": n})


async def test_events_get_increasing_seqs_and_read_in_order(backend: Backend) -> None:
    appended = [await backend.append_event(event(i)) for i in range(5)]

    seqs = [e.seq for e in appended]
    assert all(seqs)
    assert seqs == sorted(seqs, key=str) and len(set(seqs)) == 5
    assert len({len(s or "") for s in seqs}) == 1  # equal shape: string order is append order
    read = await backend.read_events()
    assert read == appended
    assert [e.data["n"] for e in read] == [0, 1, 2, 3, 4]


async def test_read_events_after_a_cursor_with_limit(backend: Backend) -> None:
    appended = [await backend.append_event(event(i)) for i in range(6)]

    page = await backend.read_events(after=appended[1].seq, limit=2)
    assert [e.message for e in page] == ["2", "3"]
    rest = await backend.read_events(after=page[-1].seq)
    assert [e.message for e in rest] == ["4", "5"]
    assert await backend.read_events(after=rest[-1].seq) == []


async def test_read_events_blocks_until_an_append(backend: Backend) -> None:
    last = await backend.append_event(event(0))

    async def append_later() -> None:
        await asyncio.sleep(0.05)
        await backend.append_event(event(1))

    appender = asyncio.create_task(append_later())
    got = await backend.read_events(after=last.seq, block_s=5.0)
    await appender

    assert [e.message for e in got] == ["1"]
    assert await backend.read_events(after=got[-1].seq, block_s=0.1) == []


async def test_blocking_read_on_an_empty_log_wakes_on_first_append(backend: Backend) -> None:
    reader = asyncio.create_task(backend.read_events(block_s=5.0))
    await asyncio.sleep(0.05)
    await backend.append_event(event(7))
    assert [e.message for e in await reader] == ["7"]


async def test_read_events_of_keeps_some_kinds_and_moves_past_the_rest(backend: Backend) -> None:
    submitted = EventKind.TASK_SUBMITTED
    appended = [
        await backend.append_event(Event(kind=kind, task_id=f"t{i}", data=data))
        for i, (kind, data) in enumerate(
            [
                (submitted, {}),
                (EventKind.TASK_DISPATCHED, {"kind": "task.submitted"}),  # only looks like one
                (EventKind.TASK_SUCCEEDED, {}),
                (submitted, {}),
                (EventKind.TASK_STARTED, {}),
            ]
        )
    ]

    page = await backend.read_events_of(frozenset({submitted}))

    assert [e.task_id for e in page.events] == ["t0", "t3"]
    assert [e.seq for e in page.events] == [appended[0].seq, appended[3].seq]
    assert page.cursor == appended[-1].seq, "past the events it skipped too"
    again = await backend.read_events_of(frozenset({submitted}), page.cursor, block_s=0.1)
    assert (again.events, again.cursor) == ([], page.cursor)
    first = await backend.read_events_of(frozenset(), None, limit=2)
    assert (first.events, first.cursor) == ([], appended[1].seq)
    assert (await backend.read_events_of(frozenset({submitted}), first.cursor)).events[
        0
    ].task_id == "t3"


async def test_event_log_keeps_only_the_newest(backend: Backend) -> None:
    extra = 20
    appended = [await backend.append_event(event(i)) for i in range(CONTRACT_EVENT_LOG_MAX + extra)]

    kept = await backend.read_events(limit=10 * CONTRACT_EVENT_LOG_MAX)

    assert kept == appended[extra:]
    # A cursor older than the oldest kept event reads from the oldest kept one.
    assert (await backend.read_events(after=appended[0].seq, limit=1)) == [appended[extra]]


async def test_dead_letters_newest_first(backend: Backend) -> None:
    before = await backend.now()
    await backend.dead_letter("w1", "bad_signature", "signature does not match", b"{1}")
    await backend.dead_letter("w2", "unknown_handler", "no handler 'x'", b"{2}")

    letters = await backend.list_dead_letters()

    assert [(d.worker_id, d.code, d.data) for d in letters] == [
        ("w2", "unknown_handler", b"{2}"),
        ("w1", "bad_signature", b"{1}"),
    ]
    assert letters[1].reason == "signature does not match"
    after = await backend.now()
    assert all(before <= d.at <= after for d in letters)
    assert len(await backend.list_dead_letters(limit=1)) == 1


async def test_lease_is_exclusive_and_renewable(backend: Backend) -> None:
    assert await backend.acquire_lease("sweeper", "orch-a", ttl_s=30) is True
    assert await backend.acquire_lease("sweeper", "orch-b", ttl_s=30) is False
    assert await backend.acquire_lease("sweeper", "orch-a", ttl_s=30) is True  # renew
    assert await backend.acquire_lease("other", "orch-b", ttl_s=30) is True


async def test_lease_is_released_only_by_its_holder(backend: Backend) -> None:
    await backend.acquire_lease("sweeper", "orch-a", ttl_s=30)

    await backend.release_lease("sweeper", "orch-b")
    assert await backend.acquire_lease("sweeper", "orch-b", ttl_s=30) is False

    await backend.release_lease("sweeper", "orch-a")
    assert await backend.acquire_lease("sweeper", "orch-b", ttl_s=30) is True


async def test_lease_expires_after_its_ttl(backend: Backend) -> None:
    assert await backend.acquire_lease("sweeper", "orch-a", ttl_s=0.1) is True
    await asyncio.sleep(0.25)
    assert await backend.acquire_lease("sweeper", "orch-b", ttl_s=30) is True
    assert await backend.acquire_lease("sweeper", "orch-a", ttl_s=30) is False


async def test_renewal_extends_the_lease(backend: Backend) -> None:
    assert await backend.acquire_lease("sweeper", "orch-a", ttl_s=0.2) is True
    await asyncio.sleep(0.1)
    assert await backend.acquire_lease("sweeper", "orch-a", ttl_s=30) is True
    await asyncio.sleep(0.2)  # past the first ttl, inside the renewed one
    assert await backend.acquire_lease("sweeper", "orch-b", ttl_s=30) is False
