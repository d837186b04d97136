"""Real ``celery worker`` processes for the bridge tests.

Each is ``python -m celery -A tests.bridges.celery_tasks worker`` on loopback against the
test redis-server, logging to a file under the test's tmp dir, started with mingle and
gossip off (quick start, no chatter) and SIGKILLed at the end whatever happened.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.procs import REPO, Proc

CELERY_APP = "tests.bridges.celery_tasks:app"
READY_TIMEOUT_S = 40.0


def celery_env(redis_url: str, ledger: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDPOOL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update({"WP_CELERY_URL": redis_url, "PYTHONUNBUFFERED": "1"})
    if ledger is not None:
        env["WP_CELERY_LEDGER"] = str(ledger)
    return env


def start_celery_worker(
    name: str,
    queues: list[str],
    directory: Path,
    env: dict[str, str],
    *,
    pool: str = "solo",
    concurrency: int = 1,
) -> Proc:
    log_path = directory / f"celery-{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.bridges.celery_tasks", "worker",
             "-Q", ",".join(queues), "-n", f"{name}@localhost", f"--pool={pool}",
             "-c", str(concurrency), "--without-mingle", "--without-gossip",
             "--loglevel=INFO"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=directory,
        )  # fmt: skip
    return Proc(name, popen, log_path)


def wait_ready(procs: list[Proc], timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until every Celery worker has logged that it is ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(" ready." in p.log() for p in procs):
            return
        dead = [p for p in procs if not p.alive]
        if dead:
            raise AssertionError("celery worker exited\n" + "\n".join(p.tail() for p in dead))
        time.sleep(0.05)
    raise AssertionError("celery workers not ready\n" + "\n".join(p.tail() for p in procs))
