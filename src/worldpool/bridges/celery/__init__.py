"""The Celery bridge (docs/celery.md).

* :class:`CeleryBridge` (``bridge.py``): a worldpool worker's handlers that hand each
  delivery to a Celery queue with ``send_task`` and wait for the result through the app's
  result backend; :class:`FleetMonitor` (``liveness.py``) turns a Celery worker that died
  into a failed attempt instead of a hang.
* :class:`WorldpoolRouter` (``router.py``): a Celery router for ``task_routes`` that picks
  the queue of the best Celery fleet worldpool knows, and records why.
* ``app.py``: loading the operator's Celery app (``module:app``), the JSON-only check, the
  Celery task id of an attempt.

Importing this package needs ``celery`` (the ``celery`` extra).
"""

from worldpool.bridges.celery.app import (
    QUEUE_LABEL,
    celery_task_id,
    load_celery_app,
    parse_celery_task_id,
    task_names,
)
from worldpool.bridges.celery.bridge import CeleryBridge, worldpool_request
from worldpool.bridges.celery.liveness import FleetMonitor
from worldpool.bridges.celery.router import WorldpoolRouter

__all__ = [
    "QUEUE_LABEL",
    "CeleryBridge",
    "FleetMonitor",
    "WorldpoolRouter",
    "celery_task_id",
    "load_celery_app",
    "parse_celery_task_id",
    "task_names",
    "worldpool_request",
]
