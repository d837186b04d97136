"""``worldpool worker --celery-app MODULE:APP --celery-queue QUEUE``: the app's tasks are
the worker's handlers and its queue is advertised in the profile."""

from __future__ import annotations

import pytest

from worldpool.cli.worker import WorkerOptions, build_profile, collect_handlers
from worldpool.errors import ConfigError


def test_the_celery_apps_tasks_become_the_workers_handlers() -> None:
    options = WorkerOptions(
        region="eu-west-1",
        builtin=False,
        celery_app="tests.bridges.celery_tasks:app",
        celery_queue="gpu-fleet",
    )
    handlers = collect_handlers(options)
    profile = build_profile(options, handlers)
    assert {"wp_tests.add", "wp_tests.slow", "wp_tests.shout"} <= profile.handlers
    assert not any(name.startswith("celery.") for name in profile.handlers)
    assert profile.labels["celery_queue"] == "gpu-fleet"


def test_the_queue_defaults_to_the_apps_default_queue() -> None:
    options = WorkerOptions(
        region="eu-west-1", builtin=False, celery_app="tests.bridges.celery_tasks:app"
    )
    build_profile(options, collect_handlers(options))
    assert options.labels["celery_queue"] == "celery"


def test_a_bad_app_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="celery-app"):
        collect_handlers(WorkerOptions(region="eu-west-1", builtin=False, celery_app="os:path"))
