"""A real TaskContext on a throwaway worker profile, for the browser and LLM tests."""

from __future__ import annotations

import uuid
from typing import Any

from worldpool.models import Location, WorkerProfile
from worldpool.worker.handlers import TaskContext


def make_ctx(
    payload: dict[str, Any],
    *,
    handler: str = "test",
    cost_per_hour: float = 0.0,
    deadline: float | None = None,
) -> TaskContext:
    worker = WorkerProfile(
        id="w-test", location=Location(region="local"), cost_per_hour=cost_per_hour
    )
    return TaskContext(
        task_id=f"task-{uuid.uuid4().hex[:12]}",
        attempt=1,
        handler=handler,
        payload=payload,
        worker=worker,
        deadline=deadline,
    )
