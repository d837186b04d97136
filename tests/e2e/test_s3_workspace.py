"""Shared workspaces switched on: ``serve`` and two ``worker`` processes take the blob
store from ``--artifact-store s3://bucket/prefix`` (credentials from the environment), and
a workflow whose steps run on different workers hands a git workspace over through a
local S3-compatible server (moto's), not through Redis."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.e2e.procs import Cluster, wait_workers
from worldpool.backends.base import Backend
from worldpool.models import Requirements, WorkflowState, WorkflowStatus
from worldpool.workflow.builder import Workflow

BUCKET = "wp-artifacts"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3_url() -> Iterator[str]:
    """A moto S3 server on a free loopback port, with the bucket made."""
    pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("moto server did not start")
            time.sleep(0.05)
        s3 = boto3.client("s3", endpoint_url=url, **_boto_credentials())
        s3.create_bucket(Bucket=BUCKET)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


async def test_a_workspace_crosses_workers_through_s3(
    cluster: Cluster, client: Backend, s3_url: str
) -> None:
    import boto3

    store = ["--artifact-store", f"s3://{BUCKET}/deploy-1", "--s3-endpoint-url", s3_url]
    # Everything above 0 bytes goes to the blob store: no artifact may travel through Redis.
    cluster.env.update({**CREDENTIALS, "WORLDPOOL_INLINE_ARTIFACT_MAX_BYTES": "0"})
    cluster.serve("serve", *store)
    procs = [
        cluster.worker(
            wid,
            "--region",
            region,
            "--label",
            f"role={wid}",
            "--handlers",
            "tests.e2e.handlers:WORKSPACES",
            "--no-builtin",
            *store,
        )
        for wid, region in (("maker", "eu-west-1"), ("reader", "us-east-1"))
    ]
    await wait_workers(client, procs)

    wf = Workflow("workspace-handover")
    make = wf.step("make", handler="make", requirements=Requirements(labels={"role": "maker"}))
    wf.step(
        "read", handler="read", after=[make], requirements=Requirements(labels={"role": "reader"})
    )
    spec = wf.build()
    path = cluster.directory / "workflow.json"
    path.write_text(spec.model_dump_json(exclude_none=True))
    done = await asyncio.to_thread(
        cluster.cli, "submit", str(path), "--wait", "--timeout-s", "60", timeout_s=90
    )
    assert done.returncode == 0, done.stdout + done.stderr + cluster.logs()
    shown = cluster.cli("status", spec.id, "--json")
    status = WorkflowStatus.model_validate_json(shown.stdout)
    assert status.status is WorkflowState.SUCCEEDED, cluster.logs()
    steps = {s.step: s for s in status.steps}
    assert (steps["make"].worker, steps["read"].worker) == ("maker", "reader")

    read = await client.get_task(steps["read"].task_id or "")
    assert read is not None and isinstance(read.result, dict)
    assert read.result["app"] == "VERSION = 2  # not committed\n"  # the uncommitted change too
    assert read.result["notes"] == "made on maker\n"

    # The bundle and the diff are objects in the bucket, under the prefix, and not in Redis.
    make_task = await client.get_task(steps["make"].task_id or "")
    assert make_task is not None
    s3 = boto3.client("s3", endpoint_url=s3_url, **_boto_credentials())
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    for ref in make_task.outputs.values():
        assert f"deploy-1/sha256/{ref.digest.removeprefix('sha256:')}" in keys, (ref, keys)
        assert not await client.has_blob(ref.digest)
