"""A Celery fleet joins a worldpool workflow. Run it:

python examples/celery_fleet.py                            # self-contained, embedded
CELERY_BROKER_URL=redis://127.0.0.1:6379/0 python examples/celery_fleet.py \
    redis://127.0.0.1:6379/0                               # a deployment (see below)

An existing Celery app (``tasks``: plain ``@app.task`` functions, JSON only) keeps its
tasks and its workers; a worldpool bridge worker hands the workflow's ``summarize`` step
to the app's queue and reads the result back, while ``fetch`` and ``publish`` run on a
native worldpool worker. To stay self-contained the example runs the Celery worker in a
thread on Celery's in-memory broker and worldpool embedded; in a deployment they are
``celery -A tasks worker -Q summaries`` and ``worldpool worker --celery-app tasks:app
--celery-queue summaries`` on Redis (docs/celery.md). With a URL, the program submits the
same workflow to a deployment: ``worldpool serve``, ``celery -A examples.celery_fleet worker
-Q summaries``, ``worldpool worker --id celery-fleet --celery-app examples.celery_fleet:app
--celery-queue summaries`` and ``worldpool worker --id native-1 --handlers
examples.celery_fleet:NATIVE``, every process with ``CELERY_BROKER_URL`` set to the Redis.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker

from worldpool import Client
from worldpool.bridges.celery import CeleryBridge, FleetMonitor, worldpool_request
from worldpool.models import WorkflowSpec, WorkflowStatus
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext
from worldpool.workflow.builder import Workflow

# --- the team's Celery app, unchanged ------------------------------------------------
BROKER = os.environ.get("CELERY_BROKER_URL", "memory://")  # redis://... in a deployment
app = Celery(
    "tasks", broker=BROKER, backend=BROKER if BROKER.startswith("redis") else "cache+memory://"
)
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


NATIVE = {"fetch": fetch, "publish": publish}


def summary() -> WorkflowSpec:
    wf = Workflow("summary")
    fetched = wf.step("fetch", handler="fetch")
    summarized = wf.step(
        "summarize", handler="tasks.summarize", after=[fetched], payload={"max_words": 4}
    )
    wf.step("publish", handler="publish", after=[summarized])
    return wf.build()


async def run(client: Client) -> WorkflowStatus:
    """What the program does, embedded or against a deployment."""
    return await (await client.submit_workflow(summary())).result(timeout_s=60)


async def main(url: str | None = None) -> WorkflowStatus:
    if url is not None:
        async with await Client.connect(url) as client:
            return await run(client)
    bridge = CeleryBridge(app, "summaries", monitor=FleetMonitor(app, "summaries"))
    workers = [
        make_worker("native-1", region="eu-west-1", handlers=list(NATIVE)),
        make_worker(
            "celery-fleet",
            region="eu-west-1",
            handlers=bridge.names,
            labels={"celery_queue": bridge.queue},
        ),
    ]
    handlers = {"native-1": NATIVE, "celery-fleet": bridge.handlers()}
    with start_worker(app, queues=["summaries"], pool="solo", perform_ping_check=False):
        async with EmbeddedPool(workers=workers, worker_handlers=handlers) as pool:
            status = await run(pool.client)
        await bridge.aclose()
    return status


if __name__ == "__main__":
    status = asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
    for step in status.steps:
        print(f"{step.step:10} {step.status:10} on {step.worker}")
