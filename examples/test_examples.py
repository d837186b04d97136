"""Every example runs as a test."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import quickstart

from worldpool.models import WorkflowState


async def test_quickstart_runs_the_workflow() -> None:
    status = await quickstart.main()
    assert status.status is WorkflowState.SUCCEEDED
    steps = {s.step: s for s in status.steps}
    assert steps["count"].worker == steps["fetch"].worker  # sticky
    assert steps["report"].status == "succeeded"


async def test_celery_fleet_runs_its_step_of_the_workflow() -> None:
    import celery_fleet

    status = await celery_fleet.main()
    assert status.status is WorkflowState.SUCCEEDED
    steps = {s.step: s for s in status.steps}
    assert steps["summarize"].worker == "celery-fleet"
    assert steps["fetch"].worker == steps["publish"].worker == "native-1"
