"""Envelopes: signing and every rejection reason."""

from __future__ import annotations

import orjson
import pytest

from worldpool.envelope import decode_envelope, encode_envelope, peek_task
from worldpool.errors import EnvelopeError
from worldpool.models import Envelope

ENV = Envelope(task_id="t1", attempt=1, handler="echo", payload={"a": 1})


def test_round_trip_signed() -> None:
    data = encode_envelope(ENV, "s3cret")
    out = decode_envelope(data, secret="s3cret", max_bytes=10_000, handlers={"echo"})
    assert out.payload == {"a": 1} and out.signature


@pytest.mark.parametrize(
    ("data", "secret", "code"),
    [
        (b"x" * 2000, None, "oversized"),
        (b"{not json", None, "malformed_json"),
        (orjson.dumps({"task_id": "t"}), None, "bad_shape"),
        (encode_envelope(ENV), "s3cret", "unsigned"),
        (encode_envelope(ENV, "other"), "s3cret", "bad_signature"),
        (encode_envelope(ENV.model_copy(update={"handler": "rm"})), None, "unknown_handler"),
    ],
)
def test_rejections_have_codes(data: bytes, secret: str | None, code: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_envelope(data, secret=secret, max_bytes=1000, handlers={"echo"})
    assert info.value.code == code


def test_tampered_payload_fails_the_signature() -> None:
    raw = orjson.loads(encode_envelope(ENV, "k"))
    raw["payload"] = {"a": 2}
    with pytest.raises(EnvelopeError, match="bad_signature"):
        decode_envelope(orjson.dumps(raw), secret="k", max_bytes=10_000)


def test_peek_task() -> None:
    assert peek_task(encode_envelope(ENV)) == ("t1", 1)
    assert peek_task(b"garbage") is None
