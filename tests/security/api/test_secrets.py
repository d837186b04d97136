"""No secret in any output: URL redaction and secrets by reference (docs/security.md)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worldpool.config import Settings
from worldpool.errors import HandlerError
from worldpool.models import TaskSpec
from worldpool.redact import RedactingFilter, redact_text, redact_url
from worldpool.worker.secrets import resolve, scrub

PASSWORD = "hunter2-planted-password"


def test_urls_lose_their_password_everywhere() -> None:
    url = f"redis://worker:{PASSWORD}@10.0.0.5:6380/0"
    assert PASSWORD not in redact_url(url)
    assert redact_url(url) == "redis://worker:***@10.0.0.5:6380/0"
    assert PASSWORD not in redact_text(f"cannot reach {url}: refused")
    assert PASSWORD not in repr(Settings(redis_url=url, secret=PASSWORD))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "dial %s", (url,), None)
    RedactingFilter().filter(record)
    assert PASSWORD not in record.getMessage()


def test_secret_references_resolve_on_the_worker(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(PASSWORD + "\n")
    refs = {"OPENAI_API_KEY": "env:OPENAI_API_KEY", "DB": f"file:{key}"}
    assert resolve(refs, {"OPENAI_API_KEY": "sk-planted"}) == {
        "OPENAI_API_KEY": "sk-planted",
        "DB": PASSWORD,
    }
    with pytest.raises(HandlerError) as caught:
        resolve({"TOKEN": "env:NOT_SET_HERE"}, {})
    assert "TOKEN (env:NOT_SET_HERE)" in str(caught.value)


def test_a_spec_holds_references_not_values() -> None:
    TaskSpec(handler="h", secrets={"K": "env:K"})
    with pytest.raises(ValueError):
        TaskSpec(handler="h", secrets={"K": "sk-a-plain-value"})


def test_a_leaked_value_is_masked_before_the_report() -> None:
    value = {"out": f"key is {PASSWORD}", "n": 1}
    assert PASSWORD not in str(scrub(value, [PASSWORD]))
    assert scrub(value, ["zzzz-absent"]) is value


def _serve_once(url: str) -> subprocess.CompletedProcess[bytes]:
    """``worldpool serve`` against ``url``, run until it gives up."""
    return subprocess.run(
        [sys.executable, "-m", "worldpool", "serve", "--redis", url, "--port", "0"],
        capture_output=True,
        timeout=90,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )


def test_serve_says_nothing_of_the_password_when_redis_refuses_its_login() -> None:
    # Given a real `worldpool serve` process pointed at a real Redis that refuses the
    # URL's password (a refused login is not retried: serve gives up at once)
    from tests.redis_server import start_redis

    with contextlib.contextmanager(start_redis)(extra_args=["--requirepass", "other"]) as server:
        done = _serve_once(f"redis://worker:{PASSWORD}@127.0.0.1:{server.port}/0")
    # Then it fails, and neither stream shows the password
    assert done.returncode != 0
    assert PASSWORD.encode() not in done.stdout + done.stderr
    assert b"***" in done.stdout + done.stderr


@pytest.mark.chaos  # a minute of reconnect backoff; the refused login above is the fast twin
def test_serve_says_nothing_of_the_password_when_redis_refuses() -> None:
    # Given a real `worldpool serve` process pointed at a Redis that is not there
    from tests.helpers import free_port

    done = _serve_once(f"redis://worker:{PASSWORD}@127.0.0.1:{free_port()}/0")
    # Then it fails, and neither stream shows the password
    assert done.returncode != 0
    assert PASSWORD.encode() not in done.stdout + done.stderr
    assert b"***" in done.stdout + done.stderr


def test_a_handler_log_line_is_masked_in_the_worker_log_too() -> None:
    """ctx.log lines propagate to the worker's own log (stderr): the value is masked
    before any handler, the step's or the worker's, sees the line or its traceback."""
    from worldpool.models import WorkerProfile
    from worldpool.worker.handlers import TaskContext

    profile = WorkerProfile.model_validate({"id": "w1", "location": {"region": "x"}})
    ctx = TaskContext("t-mask", 1, "h", {}, profile, secrets={"K": PASSWORD})
    seen: list[str] = []

    class Sink(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    root = logging.getLogger("worldpool.task")
    sink = Sink()
    root.addHandler(sink)
    try:
        ctx.log.info("key %s", PASSWORD)
        try:
            raise RuntimeError(f"refused {PASSWORD}")
        except RuntimeError:
            ctx.log.exception("call failed")
    finally:
        root.removeHandler(sink)
        ctx.close_log()
    assert len(seen) == 2 and "key ***" in seen[0] and "refused ***" in seen[1], seen
    assert not any(PASSWORD in line for line in seen + ctx.logs)
