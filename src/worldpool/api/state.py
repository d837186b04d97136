"""What the routes share, kept on ``app.state.api`` (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from worldpool.api.auth import ApiTokens
from worldpool.api.metrics import Metrics
from worldpool.client.offered import OfferedHandlers
from worldpool.config import Settings
from worldpool.orchestrator.core import Orchestrator


@dataclass
class ApiState:
    orchestrator: Orchestrator
    settings: Settings
    tokens: ApiTokens
    auth_enabled: bool
    metrics: Metrics
    sse_ping_s: float = 15.0
    sse_batch: int = 100
    max_streams: int = 64
    open_streams: int = field(default=0, init=False)
    _offered: OfferedHandlers | None = field(default=None, init=False, repr=False)

    @property
    def offered(self) -> OfferedHandlers:
        """The handler names workers offered (a submit naming another is refused)."""
        if self._offered is None:
            self._offered = OfferedHandlers(self.orchestrator.backend)
        return self._offered


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]
