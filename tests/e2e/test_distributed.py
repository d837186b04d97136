"""The demo workflow across real processes: redis-server, ``worldpool serve``, five workers.

Submitted with ``worldpool submit --wait``; the sandbox worker that starts the
localization step is SIGKILLed mid-run and the step fails over to the other sandbox host.
"""

from __future__ import annotations

import asyncio
import json
import signal

from tests.e2e.procs import Cluster, Proc, wait_event, wait_workers, write_json
from worldpool.backends.base import Backend
from worldpool.demo.scenario import demo_pool, demo_workflow
from worldpool.models import EventKind, TaskStatus, WorkflowState, WorkflowStatus

WORKERS = (
    "dgx-london-02",
    "dgx-tokyo-01",
    "browser-gcp-euwest-01",
    "sandbox-onprem-01",
    "sandbox-aws-uswest-02",
)
HANDLERS = "tests.e2e.handlers:DEMO"


def start_demo_workers(cluster: Cluster) -> dict[str, Proc]:
    procs = {}
    for profile in demo_pool():
        if profile.id not in WORKERS:
            continue
        path = write_json(cluster.directory / f"{profile.id}.json", profile.model_dump(mode="json"))
        procs[profile.id] = cluster.worker(
            profile.id,
            "--profile",
            str(path),
            "--handlers",
            HANDLERS,
            "--no-builtin",
            "--no-verify-claims",
            env={"WP_E2E_SLOW_S": "30"},
        )
    return procs


async def test_demo_workflow_across_processes_with_failover(
    cluster: Cluster, client: Backend
) -> None:
    cluster.serve()
    procs = start_demo_workers(cluster)
    await wait_workers(client, procs.values())
    spec = demo_workflow("london")
    wf_file = cluster.directory / "workflow.json"
    wf_file.write_text(spec.model_dump_json())
    seen = await client.read_events(None, 100_000)
    cursor = seen[-1].seq if seen else None

    submit = asyncio.create_task(
        asyncio.to_thread(
            cluster.cli, "submit", str(wf_file), "--wait", "--timeout-s", "90", timeout_s=100
        )
    )
    try:
        started = await wait_event(
            client, EventKind.TASK_STARTED, cursor=cursor, step="localization", timeout_s=60
        )
        victim = started.worker_id
        assert victim in ("sandbox-onprem-01", "sandbox-aws-uswest-02")
        procs[victim].signal(signal.SIGKILL)
        done = await submit
    finally:
        if not submit.done():
            submit.cancel()
    assert done.returncode == 0, done.stdout + done.stderr + cluster.logs()
    for step in spec.steps:  # submit names every task it will create
        assert f"step {step.name}: task {spec.id}.{step.name}" in done.stdout

    shown = cluster.cli("status", spec.id, "--json")
    assert shown.returncode == 0, shown.stderr
    status = WorkflowStatus.model_validate(json.loads(shown.stdout))
    assert status.status is WorkflowState.SUCCEEDED
    steps = {s.step: s for s in status.steps}
    assert set(steps) == {s.name for s in spec.steps}

    # Every step ran on a worker allowed to run it, and the status document says so fully.
    workers = {w.id: w.profile for w in await client.list_workers()}
    for step in spec.steps:
        row = steps[step.name]
        assert row.status == TaskStatus.SUCCEEDED.value
        assert row.worker in workers, row
        profile = workers[row.worker]
        assert step.task.capabilities <= profile.capabilities, (step.name, row.worker)
        if step.task.requirements.gpu:
            assert profile.hardware.gpu_count >= 1, (step.name, row.worker)
        assert row.region == profile.location.region
        assert row.started_at and row.ended_at and row.duration_ms is not None
        assert row.reason, f"{step.name}: no routing reason"
        assert row.outputs or step.name == "verify_browser", step.name
    assert status.ended_at is not None and status.error is None
    assert status.total_cost_usd == sum(s.cost_usd for s in status.steps)

    # The sticky step stayed with the worker that understood the bug.
    assert steps["fix"].worker == steps["understanding"].worker

    # The killed worker's task failed over to the other sandbox host, as attempt 2.
    loc = steps["localization"]
    assert loc.attempts == 2 and loc.worker not in (victim, None)
    record = await client.get_task(loc.task_id or "")
    assert record is not None
    assert [a.worker_id for a in record.attempts] == [victim, loc.worker]
    offline = {w.id for w in await client.list_workers() if w.state.status.value == "offline"}
    assert victim in offline
