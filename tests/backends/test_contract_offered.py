"""Contract: the handler names workers offered at registration, kept after they leave."""

from __future__ import annotations

from tests.backends.builders import profile
from worldpool.backends import Backend


async def test_offered_handlers_grow_with_registrations_and_never_shrink(
    backend: Backend,
) -> None:
    assert await backend.offered_handlers() == frozenset()
    await backend.register(profile("a").model_copy(update={"handlers": frozenset({"echo"})}))
    both = frozenset({"plan", "review"})
    await backend.register(profile("b").model_copy(update={"handlers": both}))
    assert await backend.offered_handlers() == {"echo", "plan", "review"}
    await backend.mark_offline("a")
    await backend.register(profile("b").model_copy(update={"handlers": frozenset()}))
    assert await backend.offered_handlers() == {"echo", "plan", "review"}  # ever offered
