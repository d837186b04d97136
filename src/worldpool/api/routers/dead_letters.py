"""Dead letters: the deliveries workers refused and the tasks that failed for good (admin).

A dead letter keeps the refused envelope's bytes, which can hold a task's payload, so
reading them needs the admin token (see :func:`worldpool.api.auth.required_role`).
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from worldpool.api.routers.tasks import ERRORS
from worldpool.api.state import State
from worldpool.backends.base import DeadLetter
from worldpool.models import Model

router = APIRouter(tags=["dead letters"], responses=ERRORS)


class DeadLetterView(Model):
    """One dead letter as the API shows it."""

    worker_id: str = Field(description="the worker that refused it (or ran the failed task)")
    code: str = Field(description="why, e.g. 'bad_signature', 'unknown_handler', 'failed'")
    reason: str = Field(description="the error, for people")
    data: str = Field(description="the refused bytes as UTF-8 (undecodable bytes replaced)")
    data_base64: str = Field(description="the refused bytes exactly, base64")
    at: float = Field(description="when it was written (the backend's clock, epoch s)")

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterView:
        return cls(
            worker_id=letter.worker_id,
            code=letter.code,
            reason=letter.reason,
            data=letter.data.decode("utf-8", errors="replace"),
            data_base64=base64.b64encode(letter.data).decode("ascii"),
            at=letter.at,
        )


@router.get("/api/v1/dead-letters", response_model=list[DeadLetterView])
async def list_dead_letters(
    api: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetterView]:
    """The newest dead letters first, at most ``limit`` (admin)."""
    letters = await api.orchestrator.backend.list_dead_letters(limit)
    return [DeadLetterView.of(letter) for letter in letters]
