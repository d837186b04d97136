"""Contract: the once-per-key effect ledger, fenced by the attempt that claims."""

from __future__ import annotations

from tests.backends.builders import dispatched, profile
from worldpool.backends import Backend

TTL_S = 60.0


async def test_an_effect_is_claimed_once_then_answered_with_its_value(backend: Backend) -> None:
    await backend.register(profile("w1"))
    await dispatched(backend, "t1", "w1")
    first = await backend.claim_effect("t1:pay", "t1", "w1", 1, TTL_S)
    assert first.state == "run"
    assert await backend.finish_effect("t1:pay", "t1", "w1", 1, b'{"paid":3}') is True
    again = await backend.claim_effect("t1:pay", "t1", "w1", 1, TTL_S)
    assert again.state == "done" and again.value == b'{"paid":3}'
    assert (await backend.claim_effect("t1:other", "t1", "w1", 1, TTL_S)).state == "run"


async def test_a_stale_attempt_is_fenced_and_its_late_effect_still_counts(
    backend: Backend,
) -> None:
    await backend.register(profile("w1"))
    await backend.register(profile("w2"))
    await dispatched(backend, "t1", "w1")
    assert (await backend.claim_effect("t1:pay", "t1", "w1", 1, TTL_S)).state == "run"
    assert (await backend.claim_effect("t1:pay", "t1", "w2", 1, TTL_S)).state == "fenced"
    await dispatched(backend, "t1", "w2", attempt=2)  # attempt 1's worker was lost
    assert (await backend.claim_effect("t1:pay", "t1", "w1", 1, TTL_S)).state == "fenced"
    # attempt 1 had claimed but not finished: the claim passes to attempt 2
    assert (await backend.claim_effect("t1:pay", "t1", "w2", 2, TTL_S)).state == "run"
    # a zombie finishing late: recorded (it happened), but told it was fenced
    assert await backend.finish_effect("t1:pay", "t1", "w1", 1, b"1") is False
    done = await backend.claim_effect("t1:pay", "t1", "w2", 2, TTL_S)
    assert done.state == "done" and done.value == b"1"
