"""The Celery app of the bridge tests: plain Celery tasks, as a team would have them.

Broker and result backend are ``WP_CELERY_URL`` (the test redis-server). Tasks that run
long append ``start``/``end`` lines to the ledger file ``WP_CELERY_LEDGER`` (outside
worldpool), so tests can tell what really ran, where and how often.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery

from worldpool.bridges.celery import worldpool_request

URL = os.environ.get("WP_CELERY_URL", "redis://127.0.0.1:1/0")
app = Celery("wp_tests", broker=URL, backend=URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    result_expires=600,
    task_track_started=True,  # where a task runs: the bridge notices a worker that dies
)


def _ledger(*fields: object) -> None:
    path = os.environ.get("WP_CELERY_LEDGER")
    if path:
        with open(path, "a") as ledger:  # one short line per write: appends do not interleave
            ledger.write(" ".join(str(f) for f in fields) + "\n")


@app.task(name="wp_tests.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="wp_tests.shout", bind=True)
def shout(self: Any, suffix: str = "!") -> dict[str, Any]:
    """Uppercases the upstream step ``words``'s result: what the bridge passed along."""
    request = worldpool_request(self.request)
    words = request.get("upstream", {}).get("words", "")
    return {"text": str(words).upper() + suffix, "attempt": request.get("attempt")}


@app.task(name="wp_tests.slow", bind=True)
def slow(self: Any, seconds: float, tag: str = "") -> dict[str, Any]:
    request = worldpool_request(self.request)
    _ledger("start", tag, self.request.id, os.getpid())
    time.sleep(seconds)
    _ledger("end", tag, self.request.id, os.getpid())
    return {"tag": tag, "celery_id": self.request.id, "attempt": request.get("attempt")}


@app.task(name="wp_tests.boom")
def boom(message: str) -> None:
    raise ValueError(message)


@app.task(name="wp_tests.flaky", bind=True, max_retries=1, default_retry_delay=0.1)
def flaky(self: Any) -> None:
    """Always fails, after one Celery retry of its own."""
    raise self.retry(exc=RuntimeError("still broken"))


@app.task(name="wp_tests.where", bind=True)
def where(self: Any) -> str:
    """The queue this call was routed to."""
    return str((self.request.delivery_info or {}).get("routing_key"))
