"""Refuse a submit naming a handler no worker has ever offered (a typo, a worker not yet
deployed), with a did-you-mean, unless the caller says one will come (``later``).

The backend keeps every name a worker offered at registration (it never shrinks: a
worker restarting or scaled to zero does not make its handlers unknown). A name seen once
is remembered here, so the usual submit costs no backend read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from worldpool.backends.base import Backend
from worldpool.errors import ValidationError
from worldpool.workflow.naming import did_you_mean


class UnknownHandlerError(ValidationError):
    """No registered worker has ever offered the handler a submit names."""

    def __init__(self, names: list[str], offered: frozenset[str]) -> None:
        which = ", ".join(_named(n, offered) for n in names)
        super().__init__(
            f"no worker has ever offered handler {which}; start a worker that offers it "
            "(worldpool worker --handlers module:HANDLERS), or submit with later=True "
            "(CLI: --later) to hold the work until one does"
        )
        self.names = names


class OfferedHandlers:
    """What one client knows of the handler names workers offered."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._known: frozenset[str] = frozenset()
        self._reading = asyncio.Lock()  # concurrent submits of a new name: one read

    async def check(self, names: Iterable[str]) -> None:
        """Raise :class:`UnknownHandlerError` naming those no worker ever offered."""
        missing = [n for n in dict.fromkeys(names) if n not in self._known]
        if not missing:
            return
        async with self._reading:
            missing = [n for n in missing if n not in self._known]  # read meanwhile?
            if not missing:
                return
            offered = await self._backend.offered_handlers()
            if offered is None:  # this backend keeps no such set: nothing to check against
                return
            self._known = offered
        unknown = [n for n in missing if n not in offered]
        if unknown:
            raise UnknownHandlerError(unknown, offered)


def _named(name: str, offered: frozenset[str]) -> str:
    hint = did_you_mean(name, offered).strip()  # "Did you mean 'echo'?"
    return f"{name!r} ({hint[0].lower()}{hint[1:]})" if hint else repr(name)
