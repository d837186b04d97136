"""Envelopes on the wire: canonical JSON (orjson), optional HMAC-SHA256 signature.

A worker calls :func:`decode_envelope` on every delivery; anything wrong raises
:class:`~worldpool.errors.EnvelopeError` with a reason code, so the worker can dead-letter
it and carry on. Codes: ``oversized``, ``malformed_json``, ``bad_shape``, ``unsigned``,
``bad_signature``, ``wrong_worker`` (bound to another worker), ``expired``,
``unknown_handler``. With per-worker keys (:mod:`worldpool.identity`) the ``secret`` a
worker checks with is its own key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Container

import orjson
import pydantic

from worldpool.errors import EnvelopeError
from worldpool.models import Envelope


def canonical_bytes(envelope: Envelope) -> bytes:
    """The signed bytes: the envelope without its signature, keys sorted."""
    body = envelope.model_dump(mode="json", exclude={"signature"})
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def sign(envelope: Envelope, secret: str) -> str:
    return hmac.new(secret.encode(), canonical_bytes(envelope), hashlib.sha256).hexdigest()


def encode_envelope(envelope: Envelope, secret: str | None = None) -> bytes:
    if secret:
        envelope = envelope.model_copy(update={"signature": sign(envelope, secret)})
    return envelope.model_dump_json().encode()


def peek_task(data: bytes) -> tuple[str, int] | None:
    """Best-effort (task id, attempt) of raw bytes, for reporting a rejected envelope."""
    try:
        raw = orjson.loads(data)
        task_id, attempt = raw["task_id"], raw["attempt"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if isinstance(task_id, str) and isinstance(attempt, int) and attempt >= 1:
        return task_id, attempt
    return None


def decode_envelope(
    data: bytes,
    *,
    secret: str | None,
    max_bytes: int,
    handlers: Container[str] | None = None,
    worker_id: str | None = None,
    now: float | None = None,
) -> Envelope:
    """Parse and check one delivery. Raises EnvelopeError(code, reason)."""
    if len(data) > max_bytes:
        raise EnvelopeError("oversized", f"{len(data)} bytes is over the {max_bytes}-byte limit")
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("malformed_json", f"not valid JSON: {exc}") from None
    try:
        envelope = Envelope.model_validate(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "envelope"
        raise EnvelopeError("bad_shape", f"{where}: {first['msg']}") from None
    if secret:
        if not envelope.signature:
            raise EnvelopeError(
                "unsigned", "a deployment secret is set but the envelope is unsigned"
            )
        if not hmac.compare_digest(envelope.signature, sign(envelope, secret)):
            raise EnvelopeError("bad_signature", "HMAC-SHA256 signature does not match")
    if worker_id is not None and envelope.worker_id not in (None, worker_id):
        raise EnvelopeError(
            "wrong_worker", f"sent to worker {envelope.worker_id!r}, not to {worker_id!r}"
        )
    if secret and worker_id is not None and envelope.worker_id is None:
        raise EnvelopeError("wrong_worker", "a signed envelope must name its worker")
    if not_started_in_time(envelope, now):
        raise EnvelopeError("expired", f"expired at {envelope.expires_at}; never started")
    if handlers is not None and envelope.handler not in handlers:
        raise EnvelopeError("unknown_handler", f"this worker has no handler {envelope.handler!r}")
    return envelope


def not_started_in_time(envelope: Envelope, now: float | None = None) -> bool:
    """Whether the envelope's start window is over (checked again as its handler begins)."""
    if envelope.expires_at is None:
        return False
    return (time.time() if now is None else now) > envelope.expires_at
