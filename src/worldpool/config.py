"""One typed settings object. Every field can be set from ``WORLDPOOL_<FIELD>``.

Units are in the names (``heartbeat_s``, ``max_envelope_bytes``). ``DEFAULT_*`` constants
document the defaults in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from worldpool.errors import ConfigError

ENV_PREFIX = "WORLDPOOL_"

DEFAULT_HEARTBEAT_S = 1.0
DEFAULT_OFFLINE_AFTER_HEARTBEATS = 3
DEFAULT_MAX_ENVELOPE_BYTES = 1_048_576
DEFAULT_INLINE_ARTIFACT_MAX_BYTES = 256 * 1024
DEFAULT_ARTIFACT_TTL_S = 7 * 24 * 3600
DEFAULT_RESULT_INLINE_MAX_BYTES = 256 * 1024
DEFAULT_RESULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_EVENT_LOG_MAX = 100_000
DEFAULT_NAMESPACE = "default"
DEFAULT_API_MAX_BODY_BYTES = 1_048_576
DEFAULT_DRAIN_TIMEOUT_S = 10.0
# Interactive headroom (routing): 0 keeps no slot back. docs/routing.md#interactive-headroom
DEFAULT_INTERACTIVE_RESERVE = 0
DEFAULT_INTERACTIVE_RESERVE_SHARE = 0.0
MAX_INTERACTIVE_RESERVE = 1024

# The seed's composite formula: capability match 40 %, load 30 %, latency 20 %, cost 10 %.
DEFAULT_WEIGHTS: dict[str, float] = {
    "capability_match": 0.4,
    "load": 0.3,
    "latency": 0.2,
    "cost": 0.1,
    "geo_proximity": 0.2,
    "follow_the_sun": 0.1,
    "soft_affinity": 0.5,
    "data_locality": 0.2,
}


class Settings(BaseModel):
    """worldpool's settings; build with :meth:`from_env` to read ``WORLDPOOL_*``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    redis_url: str | None = None
    secret: str | None = Field(
        default=None, repr=False, description="HMAC key for envelope signatures"
    )
    heartbeat_s: float = Field(default=DEFAULT_HEARTBEAT_S, gt=0)
    offline_after_heartbeats: int = Field(default=DEFAULT_OFFLINE_AFTER_HEARTBEATS, ge=1)
    max_envelope_bytes: int = Field(default=DEFAULT_MAX_ENVELOPE_BYTES, gt=0)
    inline_artifact_max_bytes: int = Field(default=DEFAULT_INLINE_ARTIFACT_MAX_BYTES, ge=0)
    artifact_ttl_s: float = Field(default=DEFAULT_ARTIFACT_TTL_S, gt=0)
    result_inline_max_bytes: int = Field(
        default=DEFAULT_RESULT_INLINE_MAX_BYTES,
        ge=0,
        description="a task's value (as JSON) larger than this is stored as an artifact and "
        "its record holds a reference; clients fetch it and check its digest",
    )
    result_max_bytes: int = Field(
        default=DEFAULT_RESULT_MAX_BYTES,
        gt=0,
        description="a task's value (as JSON) larger than this fails the task (not retried)",
    )
    artifact_dir: Path | None = None
    artifact_store: str | None = Field(
        default=None,
        description="where large artifacts (workspaces) go: a directory, or "
        "s3://bucket/prefix (credentials from the environment, as boto3 finds them)",
    )
    artifact_s3_endpoint_url: str | None = Field(
        default=None, description="an S3-compatible endpoint (MinIO, Ceph, R2); None: AWS"
    )
    event_log_max: int = Field(default=DEFAULT_EVENT_LOG_MAX, gt=0)
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    results_claim_after_s: float = Field(
        default=10.0,
        gt=0,
        description="results another orchestrator replica took and left unacked this long "
        "are claimed by a live one",
    )
    report_candidates_max: int = Field(
        default=25, ge=1, description="candidates listed per routing decision"
    )
    interactive_reserve: int = Field(
        default=DEFAULT_INTERACTIVE_RESERVE,
        ge=0,
        le=MAX_INTERACTIVE_RESERVE,
        description="free slots per worker kept for interactive tasks: a task that is not "
        "interactive may not take a worker's last N free slots (at most slots - 1 per "
        "worker, so a 1-slot worker keeps none)",
    )
    interactive_reserve_share: float = Field(
        default=DEFAULT_INTERACTIVE_RESERVE_SHARE,
        ge=0,
        lt=1,
        description="the same as a share of each worker's slots (rounded down); the larger "
        "of interactive_reserve and this share's count applies",
    )
    api_token_admin: str | None = Field(
        default=None, min_length=16, repr=False, description="bearer token with full API access"
    )
    api_token_read: str | None = Field(
        default=None,
        min_length=16,
        repr=False,
        description="bearer token for read-only API access",
    )
    api_max_body_bytes: int = Field(
        default=DEFAULT_API_MAX_BODY_BYTES, gt=0, description="largest accepted request body"
    )
    drain_timeout_s: float = Field(
        default=DEFAULT_DRAIN_TIMEOUT_S,
        ge=0,
        description="a draining worker's running handlers get this long to finish before "
        "they are stopped and handed back (tasks not started are handed back at once)",
    )
    worker_key: str | None = Field(
        default=None,
        description="this worker's own credential (``worldpool credential WORKER_ID``); "
        "derived from ``secret`` when only that is set",
    )
    envelope_ttl_s: float = Field(
        default=900.0,
        gt=0,
        description="an envelope not started this long after its send "
        "never starts (allow for clock skew between orchestrator and worker hosts)",
    )

    @model_validator(mode="after")
    def _check_weights(self) -> Settings:
        check_weights(self.weights)
        return self

    @property
    def offline_after_s(self) -> float:
        return self.heartbeat_s * self.offline_after_heartbeats

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``WORLDPOOL_*`` variables; keyword overrides win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if name == "weights":
                values[name] = parse_weights(raw)
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("redis_url"):
            check_backend_url(str(values["redis_url"]))
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from exc

    def __repr_args__(self) -> Any:  # a Settings in a log or traceback shows no password
        from worldpool.redact import redact_url

        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "redis_url" and value else value


def parse_weights(text: str) -> dict[str, float]:
    """Parse ``"load=0.5,cost=0.2"`` into a weights dict (unnamed scorers keep defaults)."""
    weights = dict(DEFAULT_WEIGHTS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"weight {part!r} must look like name=number, e.g. load=0.3")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"weight {name.strip()!r} has value {value!r}: not a number"
            ) from None
    return check_weights(weights)


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights must be finite, non-negative and sum to a positive number."""
    for name, value in weights.items():
        if not value >= 0 or value == float("inf"):
            raise ConfigError(f"weight {name!r} is {value}: weights must be finite and >= 0")
    if sum(weights.values()) <= 0:
        raise ConfigError("routing weights sum to 0: give at least one scorer a positive weight")
    return dict(weights)


def _explain(exc: ValidationError) -> str:
    lines = [
        f"{ENV_PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
        for err in exc.errors()
    ]
    return "invalid settings: " + "; ".join(lines)


def check_backend_url(url: str) -> None:
    """Reject a backend URL that does not say where to connect (``redis:/host``, a bad
    port, a non-numeric database) instead of letting the client fall back to a default
    host. The message never repeats a password the URL may carry."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"backend URL {_shown(url)!r} is malformed ({exc}); {_URL_HINT}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return
    if scheme not in ("redis", "rediss"):
        raise ConfigError(
            f"backend URL {_shown(url)!r} has an unknown scheme {scheme or '(none)'!r}; {_URL_HINT}"
        )
    if not url[len(scheme) :].startswith("://") or not parts.hostname:
        raise ConfigError(f"backend URL {_shown(url)!r} names no host; {_URL_HINT}")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ConfigError(
            f"backend URL {_shown(url)!r}: the database {db!r} must be a number; {_URL_HINT}"
        )
    del port  # parsed only to be checked


def check_http_url(url: str, name: str = "URL") -> str:
    """``url`` when it is ``http(s)://HOST[:PORT][/path]``; a one-line ConfigError naming
    ``name`` (the flag) otherwise: ``http:/pool`` or ``pool:8600`` is an error, never a
    request to some default host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsed only to be checked
    except ValueError as exc:
        raise ConfigError(f"{name} {url!r} is malformed ({exc}); {_HTTP_HINT}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError(f"{name} {url!r} is not an http(s) URL; {_HTTP_HINT}")
    if not url[len(parts.scheme) :].startswith("://") or not parts.hostname:
        raise ConfigError(f"{name} {url!r} names no host; {_HTTP_HINT}")
    return url


_HTTP_HINT = "write it as http://HOST:8700 (https:// for TLS)"
_URL_HINT = "write it as redis://HOST:6379/0 (rediss:// for TLS, memory:// for embedded)"


def _shown(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in auth:
        return url
    return f"{scheme}://{auth.split(':', 1)[0]}:***@{host}"
