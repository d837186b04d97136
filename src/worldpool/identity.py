"""Worker identity: per-worker keys, signed reports, signed registrations.

Every worker has a key of its own, derived from the deployment secret ``WORLDPOOL_SECRET``
as ``HMAC-SHA256(secret, "worker:" + worker_id)`` (hex). The orchestrator holds the secret
and derives any worker's key itself; a worker holds only its own key (``worldpool
credential WORKER_ID`` prints it; the worker takes ``--credential`` or
``WORLDPOOL_WORKER_KEY``). So a worker can neither read envelopes signed for another
worker nor sign a report or a registration as another worker.

- Envelopes are signed with the target worker's key (:func:`worldpool.envelope.sign`
  takes the key as its secret) and name that worker in ``worker_id``.
- Reports (:class:`~worldpool.models.TaskResult`) carry ``signature`` =
  HMAC(key, canonical bytes of the report without its signature).
- A registration carries ``credential_proof`` = HMAC(key, "register:" + worker_id).

One HMAC-SHA256 over the canonical bytes per message; keys are cached per worker id.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

import orjson

from worldpool.models import TaskResult


@lru_cache(maxsize=65536)
def worker_key(secret: str, worker_id: str) -> str:
    """The credential of ``worker_id`` in the deployment whose secret is ``secret``."""
    return hmac.new(secret.encode(), f"worker:{worker_id}".encode(), hashlib.sha256).hexdigest()


def key_for(worker_id: str, *, secret: str | None, worker_key_: str | None) -> str | None:
    """A worker's own key: the one it was given, else derived from the secret, else None."""
    if worker_key_:
        return worker_key_
    return worker_key(secret, worker_id) if secret else None


def _mac(key: str, data: bytes) -> str:
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def result_bytes(result: TaskResult) -> bytes:
    """The signed bytes of a report: every field but the signature, keys sorted."""
    body = result.model_dump(mode="json", exclude={"signature"})
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def sign_result(result: TaskResult, key: str) -> str:
    return _mac(key, result_bytes(result))


def result_signed_by(result: TaskResult, secret: str) -> bool:
    """Whether ``result`` is signed with the key of the worker it names."""
    if not result.signature:
        return False
    expected = sign_result(result, worker_key(secret, result.worker_id))
    return hmac.compare_digest(result.signature, expected)


def registration_proof(worker_id: str, key: str) -> str:
    return _mac(key, f"register:{worker_id}".encode())


def registration_valid(worker_id: str, proof: str | None, secret: str) -> bool:
    if not proof:
        return False
    expected = registration_proof(worker_id, worker_key(secret, worker_id))
    return hmac.compare_digest(proof, expected)
