"""A Celery fleet joins a worldpool workflow. Run it:

python examples/celery_fleet.py

An existing Celery app (``tasks``: plain ``@app.task`` functions, JSON only) keeps its
tasks and its workers; a worldpool bridge worker hands the workflow's ``summarize`` step
to the app's queue and reads the result back, while ``fetch`` and ``publish`` run on a
native worldpool worker. To stay self-contained the example runs the Celery worker in a
thread on Celery's in-memory broker and worldpool embedded; in a deployment they are
``celery -A tasks worker -Q summaries`` and ``worldpool worker --celery-app tasks:app
--celery-queue summaries`` on Redis (docs/celery.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker

from worldpool.bridges.celery import CeleryBridge, FleetMonitor, worldpool_request
from worldpool.models import WorkflowStatus
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext
from worldpool.workflow.builder import Workflow

# --- the team's Celery app, unchanged ------------------------------------------------
app = Celery("tasks", broker="memory://", backend="cache+memory://")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_track_started=True,  # lets the bridge notice a Celery worker that dies
    broker_transport_options={"polling_interval": 0.01},
)


@app.task(name="tasks.summarize", bind=True)
def summarize(self: Any, max_words: int = 5) -> str:
    text = str(worldpool_request(self.request).get("upstream", {}).get("fetch", ""))
    return " ".join(text.split()[:max_words]) + " ..."


# --- native worldpool handlers -------------------------------------------------------
def fetch(ctx: TaskContext) -> str:
    return "Celery workers keep running unchanged while worldpool places and explains the work"


def publish(ctx: TaskContext) -> str:
    return f"published: {ctx.upstream['summarize']}"


async def main() -> WorkflowStatus:
    bridge = CeleryBridge(app, "summaries", monitor=FleetMonitor(app, "summaries"))
    workers = [
        make_worker("native-1", region="eu-west-1", handlers=["fetch", "publish"]),
        make_worker(
            "celery-fleet",
            region="eu-west-1",
            handlers=bridge.names,
            labels={"celery_queue": bridge.queue},
        ),
    ]
    wf = Workflow("summary")
    fetched = wf.step("fetch", handler="fetch")
    summarized = wf.step(
        "summarize", handler="tasks.summarize", after=[fetched], payload={"max_words": 4}
    )
    wf.step("publish", handler="publish", after=[summarized])
    native = {"fetch": fetch, "publish": publish}
    handlers = {"native-1": native, "celery-fleet": bridge.handlers()}
    with start_worker(app, queues=["summaries"], pool="solo", perform_ping_check=False):
        async with EmbeddedPool(workers=workers, worker_handlers=handlers) as pool:
            record = await pool.orchestrator.submit_workflow(wf.build())
            status = await pool.orchestrator.wait_workflow(record.spec.id, 30)
        await bridge.aclose()
    return status


if __name__ == "__main__":
    status = asyncio.run(main())
    for step in status.steps:
        print(f"{step.step:10} {step.status:10} on {step.worker}")
