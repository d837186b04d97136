"""What the routes share, kept on ``app.state.api`` (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from worldpool.api.auth import ApiTokens
from worldpool.api.metrics import Metrics
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


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]
