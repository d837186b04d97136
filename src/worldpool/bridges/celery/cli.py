"""What ``worldpool worker --celery-app MODULE:APP --celery-queue QUEUE`` adds to a
worker: the bridge's handlers, and the label that advertises its queue."""

from __future__ import annotations

from worldpool.bridges.celery.app import QUEUE_LABEL, load_celery_app
from worldpool.bridges.celery.bridge import CeleryBridge
from worldpool.worker.handlers import HandlerTable


def celery_handlers(spec: str, queue: str | None, labels: dict[str, str]) -> HandlerTable:
    """The Celery app's tasks as handlers; sets ``labels[celery_queue]`` to the queue."""
    app = load_celery_app(spec)
    bridge = CeleryBridge(app, queue or str(app.conf.task_default_queue))
    labels[QUEUE_LABEL] = bridge.queue
    return bridge.handlers()
