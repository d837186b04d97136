"""The operator's Celery app: loading it from ``module:app``, refusing pickle, listing its
task names, and the Celery task id of a worldpool attempt.

The app always comes from the command line or the caller's code, never from message data.
"""

from __future__ import annotations

import re
from typing import Any

from worldpool.errors import ConfigError
from worldpool.plugins import import_object

# The label a bridge worker advertises its Celery queue under (the router reads it).
QUEUE_LABEL = "celery_queue"
_HANDLER_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # TaskSpec.handler's pattern
_ID_SUFFIX = re.compile(r"^(?P<task>.+)\.a(?P<attempt>[0-9]+)$")


def celery_task_id(task_id: str, attempt: int) -> str:
    """The Celery task id of one attempt: a retry never collides with an earlier one, and
    a late result of a superseded attempt is never read as the current one's."""
    return f"{task_id}.a{attempt}"


def parse_celery_task_id(celery_id: str) -> tuple[str, int] | None:
    """``(task_id, attempt)`` of an id made by :func:`celery_task_id`, else None."""
    match = _ID_SUFFIX.match(celery_id)
    return None if match is None else (match["task"], int(match["attempt"]))


def load_celery_app(spec: str) -> Any:
    """Import ``module:attribute`` (dots in the attribute walk into it) and check it is a
    Celery app that speaks JSON only."""
    from celery import Celery

    obj = import_object(spec, "--celery-app", "package.module:app")
    if not isinstance(obj, Celery):
        raise ConfigError(f"--celery-app {spec!r} is a {type(obj).__name__}, not a Celery app")
    check_json_only(obj)
    return obj


def check_json_only(app: Any) -> None:
    """Refuse an app whose messages or results may be pickled: the bridge reads results
    of tasks it did not write, and pickle would run code from them."""
    conf = app.conf
    bad = [
        f"{name}={value!r}"
        for name, value in (
            ("task_serializer", conf.task_serializer),
            ("result_serializer", conf.result_serializer),
        )
        if value != "json"
    ]
    accepted = set(conf.accept_content or []) | set(conf.result_accept_content or [])
    if accepted - {"json", "application/json"}:
        bad.append(f"accept_content={sorted(accepted)!r}")
    if bad:
        raise ConfigError(
            "the Celery bridge speaks JSON only; set task_serializer, result_serializer "
            "and accept_content to json (got " + ", ".join(bad) + ")"
        )


def task_names(app: Any) -> list[str]:
    """The app's own task names (Celery's built-in ``celery.*`` tasks left out), after
    importing the modules its configuration names (``include``, ``imports``)."""
    app.loader.import_default_modules()
    names = sorted(name for name in app.tasks if not name.startswith("celery."))
    bad = [name for name in names if not _HANDLER_NAME.match(name)]
    if bad:
        raise ConfigError(
            f"these Celery task names cannot be worldpool handler names: {bad} "
            "(letters, digits and _.:- only, at most 128)"
        )
    return names
